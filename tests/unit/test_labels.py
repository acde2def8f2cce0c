def test_dates_in_the_locales_form_whatever_the_machine_locale():
    from datetime import date

    from pipelines.labels import day, long_day

    d = date(2026, 11, 5)  # a Thursday
    assert day(d, "zh-CN") == "2026年11月5日"
    assert day(d, "en") == "5 Nov 2026"
    assert long_day(d, "zh-CN") == "2026年11月5日 星期四"
    assert long_day(d, "en") == "Thursday 5 November 2026"
    assert long_day(date(2027, 1, 3), "en") == "Sunday 3 January 2027"


def test_report_day_filter_follows_the_rendering_language():
    from pipelines.report import make_env

    tpl = make_env().from_string("{{ d|day }}")
    assert tpl.render(d="2026-11-25", lang="zh-CN") == "2026年11月25日"
    assert tpl.render(d="2026-11-25", lang="en") == "25 Nov 2026"
    assert tpl.render(d=None, lang="en") == ""


def test_chinese_sentences_write_dates_the_chinese_way():
    import pandas as pd

    from pipelines.explain import day

    s = pd.Series([pd.Timestamp("2026-03-03"), pd.NaT, pd.Timestamp("2026-12-25")])
    assert day(s).tolist() == ["2026-03-03", "", "2026-12-25"]
    assert day(s, "无", lang="zh").tolist() == ["2026年3月3日", "无", "2026年12月25日"]

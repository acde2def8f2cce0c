"""The workbench's FastAPI app: :func:`create_app` builds it on the configured reporting database.

Pages are server-rendered Jinja2 templates (autoescape on); the only script is the static
``app.js`` (select-all checkbox), so the Content-Security-Policy allows no inline script. Every
POST needs the session's CSRF token (403 otherwise); decisions go through
:mod:`pipelines.workbench.service` and a refused one is shown with its rule (403 for authority
and region, 409 for a conflict or a replaced recommendation, 422 for the other rules).

The handlers are module-level functions on :data:`router`; what they share (the config section,
the engines, the signer, the templates) is the app's :class:`Workbench`, read with :func:`W`.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipelines import labels as names
from pipelines import reporting
from pipelines.config import Config, WorkbenchConfig
from pipelines.decisions import REASON_CODES, DecisionsError, parse_date, parse_decisions
from pipelines.workbench import auth, charts, i18n, purchases, queries, service, users
from pipelines.workbench.links import transfer_link
from pipelines.workbench.service import DecisionRefused, RecKey

HERE = Path(__file__).resolve().parent
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_BULK_LINES = 5000
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'"
)
_STATUS = {"authority": 403, "region": 403, "conflict": 409, "replaced": 409, "not_found": 404}


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


@dataclass
class Who:
    user: users.User
    session: auth.Session


@dataclass(frozen=True)
class Workbench:
    """What every request needs: the config section, the database engines, the signer, the templates."""

    cfg: WorkbenchConfig
    db_url: str
    engine: sa.Engine
    writer: sa.Engine
    signer: auth.Signer
    env: jinja2.Environment


def W(request: Request) -> Workbench:
    """The app's :class:`Workbench` (set by :func:`create_app`)."""
    return request.app.state.workbench


router = APIRouter()


def rec_url(base: str, key: RecKey) -> str:
    """Link to a transfer's detail page (``base``: '' inside the app, the public base URL outside)."""
    return transfer_link(base, key.rec_run_date, key.sku, key.from_location, key.to_location)


def _key_token(key: RecKey, version: int, run_id: str | None = None) -> str:
    """A line's checkbox value: run date | sku | from | to | version seen | run id seen."""
    parts = (key.rec_run_date.isoformat(), key.sku, key.from_location, key.to_location, version, run_id or "")
    return "|".join(quote(str(x), safe="") for x in parts)


def _parse_key_token(token: str) -> tuple[RecKey, int, str | None] | None:
    from urllib.parse import unquote

    parts = [unquote(p) for p in token.split("|")]
    if len(parts) not in (5, 6):
        return None
    d = parse_date(parts[0])
    if d is None or not parts[4].isdigit():
        return None
    run_id = parts[5] if len(parts) == 6 and parts[5] else None
    return RecKey(d, parts[1], parts[2], parts[3]), int(parts[4]), run_id


def _fmt(v: Any, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, int | float):
        return f"{v:,.{digits}f}"
    return str(v)


async def security_headers(request: Request, call_next: Any) -> Response:
    response: Response = await call_next(request)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if not request.url.path.startswith("/static"):
        response.headers["Cache-Control"] = "no-store"
    new = getattr(request.state, "new_session_cookie", None)
    if new:
        _set_session_cookie(request, response, new)
    return response


def _set_session_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        auth.SESSION_COOKIE,
        value,
        max_age=W(request).cfg.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=W(request).cfg.secure_cookies,
        path="/",
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def current(request: Request) -> Who:
    ip = client_ip(request)
    sid = W(request).signer.session_id(request.cookies.get(auth.SESSION_COOKIE))
    proxied = auth.proxy_user(W(request).cfg, ip, dict(request.headers))
    with W(request).engine.connect() as conn:
        sess = auth.get_session(conn, sid)
        if proxied is not None and (sess is None or sess.user_name != proxied):
            sess = None
        if sess is not None:
            user = users.get_user(conn, sess.user_name)
            if user is not None and user.active:
                return Who(user, sess)
    if proxied is not None:
        with W(request).writer.begin() as conn:
            user = users.get_user(conn, proxied)
            if user is not None and user.active:
                sess = auth.create_session(conn, user.name, ip, W(request).cfg.session_max_age_seconds)
                request.state.new_session_cookie = W(request).signer.session_cookie(sess.session_id)
                return Who(user, sess)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise LoginRequired(target if request.method == "GET" else "/")


def posted(request: Request, who: Annotated[Who, Depends(current)], csrf_token: Annotated[str, Form()] = "") -> Who:
    if not auth.csrf_ok(who.session, csrf_token):
        raise HTTPException(403, "CSRF token missing or wrong")
    return who


async def login_required(request: Request, exc: LoginRequired) -> Response:
    return RedirectResponse("/login?" + urlencode({"next": exc.next_url}), status_code=303)


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 403:  # bilingual: the user's language may not be known (no session)
        text = i18n.texts("en")["forbidden"] + "\n" + i18n.texts("zh")["forbidden"]
    else:
        text = str(exc.detail)
    return PlainTextResponse(f"{exc.status_code}: {text}", status_code=exc.status_code)


def render(request: Request, who: Who | None, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = who.user.lang if who else request.query_params.get("lang", "zh")
    lang = lang if lang in users.LANGS else "zh"
    html = (
        W(request)
        .env.get_template(name)
        .render(
            t=i18n.texts(lang),
            lang=lang,
            who=who.user if who else None,
            csrf=who.session.csrf_token if who else "",
            path=request.url.path,
            messages=ctx.pop("messages", []),
            **ctx,
        )
    )
    return HTMLResponse(html, status_code=status)


# ---------------------------------------------------------------------------------- login
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    token = W(request).signer.login_token()
    resp = render(request, None, "login.html", next=_safe_next(next), login_csrf=token)
    resp.set_cookie(
        auth.LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="lax", secure=W(request).cfg.secure_cookies
    )
    return resp


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    if not W(request).signer.login_token_ok(request.cookies.get(auth.LOGIN_CSRF_COOKIE), csrf_token):
        raise HTTPException(403, "login CSRF token missing or wrong")
    ip = client_ip(request)
    name = username.strip()
    token = W(request).signer.login_token()

    def again(msg: str, status: int) -> HTMLResponse:
        resp = render(
            request,
            None,
            "login.html",
            status=status,
            next=_safe_next(next),
            login_csrf=token,
            messages=[("error", msg)],
            username=name,
        )
        resp.set_cookie(
            auth.LOGIN_CSRF_COOKIE,
            token,
            max_age=3600,
            httponly=True,
            samesite="lax",
            secure=W(request).cfg.secure_cookies,
        )
        return resp

    t = i18n.texts(request.query_params.get("lang", "zh"))
    with W(request).writer.begin() as conn:
        if (
            auth.recent_failures(conn, name, ip, W(request).cfg.login_window_minutes)
            >= W(request).cfg.login_max_failures
        ):
            auth.record_attempt(conn, name, ip, False)
            return again(t["throttled"].format(m=W(request).cfg.login_window_minutes), 429)
        user = users.verify_password(conn, name, password)
        auth.record_attempt(conn, name, ip, user is not None)
        if user is None:
            failed = True
        else:
            failed = False
            sess = auth.create_session(conn, user.name, ip, W(request).cfg.session_max_age_seconds)
    if failed:
        return again(t["bad_login"], 401)
    resp = RedirectResponse(_safe_next(next), status_code=303)
    _set_session_cookie(request, resp, W(request).signer.session_cookie(sess.session_id))
    resp.delete_cookie(auth.LOGIN_CSRF_COOKIE)
    return resp


@router.post("/logout")
def logout(request: Request, who: Annotated[Who, Depends(posted)]) -> Response:
    with W(request).writer.begin() as conn:
        auth.revoke_session(conn, who.session.session_id)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(auth.SESSION_COOKIE, path="/")
    return resp


@router.post("/lang")
def toggle_lang(
    request: Request,
    who: Annotated[Who, Depends(posted)],
    lang: Annotated[str, Form()] = "zh",
    back: Annotated[str, Form()] = "/",
) -> Response:
    with W(request).writer.begin() as conn:
        users.set_language(conn, who.user.name, lang if lang in users.LANGS else "zh")
    return RedirectResponse(_safe_next(back), status_code=303)


@router.get("/healthz", response_class=PlainTextResponse)
def healthz(request: Request) -> str:
    with W(request).engine.connect() as conn:
        conn.execute(sa.text("select 1"))
    return "ok"


# ---------------------------------------------------------------------------------- pages
@router.get("/", response_class=HTMLResponse)
def today_page(request: Request, who: Annotated[Who, Depends(current)]) -> HTMLResponse:
    with W(request).engine.connect() as conn:
        data = queries.today(conn, who.user)
    return render(request, who, "today.html", data=data)


def _filter(request: Request) -> queries.TransferFilter:
    p = request.query_params
    page = p.get("page", "1")
    return queries.TransferFilter(
        region=p.get("region", ""),
        location=p.get("location", ""),
        category=p.get("category", ""),
        tier=p.get("tier", ""),
        status=p.get("status", ""),
        q=p.get("q", ""),
        sort=p.get("sort", "benefit") if p.get("sort") in queries.SORTS else "benefit",
        page=int(page) if page.isdigit() else 1,
    )


def _transfers(request: Request, who: Who, status: int = 200, messages: list | None = None) -> HTMLResponse:
    f = _filter(request)
    with W(request).engine.connect() as conn:
        page = queries.transfers_page(conn, who.user, f, W(request).cfg.page_size)
        options = queries.filter_options(conn, who.user)
    rows = [
        {
            **r,
            "token": _key_token(
                RecKey(r["run_date"], r["sku"], r["from_location"], r["to_location"]),
                r["version"] or 0,
                r["run_id"],
            ),
        }
        for r in page.rows
    ]
    params = f.as_params()
    return render(
        request,
        who,
        "transfers.html",
        status=status,
        page=page,
        rows=rows,
        f=f,
        options=options,
        sorts=queries.SORTS,
        query=urlencode(params),
        messages=messages or [],
    )


@router.get("/transfers", response_class=HTMLResponse)
def transfers_page(request: Request, who: Annotated[Who, Depends(current)]) -> HTMLResponse:
    return _transfers(request, who)


@router.post("/transfers/bulk-approve", response_class=HTMLResponse)
async def bulk(request: Request, who: Annotated[Who, Depends(current)]) -> HTMLResponse:
    # the form is read here, not by a Form() dependency: up to MAX_BULK_LINES lines per request
    form = await request.form(max_fields=MAX_BULK_LINES + 10)
    if not auth.csrf_ok(who.session, str(form.get("csrf_token") or "")):
        raise HTTPException(403, "CSRF token missing or wrong")
    items = []
    bad = 0
    for tok in form.getlist("line"):
        parsed = _parse_key_token(str(tok))
        if parsed is None:
            bad += 1
        else:
            items.append(parsed)
    from starlette.concurrency import run_in_threadpool

    def work() -> service.BulkResult:
        with W(request).writer.begin() as conn:
            return service.bulk_approve(conn, who.user, items, approval_limit=W(request).cfg.planner_approval_limit)

    res = await run_in_threadpool(work)
    t = i18n.texts(who.user.lang)
    msgs: list[tuple[str, str]] = [("ok", t["bulk_done"].format(n=len(res.decided)))]
    msgs += [("error", f"{t['refused']} [{e.rule}]: {e}") for e in res.refused]
    if bad:
        msgs.append(("error", f"{bad} malformed line reference(s) ignored"))
    status = 200 if res.decided or not res.refused else _STATUS.get(res.refused[0].rule, 422)
    scope = dict(request.scope)
    scope["query_string"] = str(form.get("back_query") or "").encode()
    return _transfers(Request(scope), who, status=status, messages=msgs)


def _key_from(params: Any) -> RecKey | None:
    d = parse_date(str(params.get("date", "")))
    sku, src, dst = (str(params.get(k, "")) for k in ("sku", "from", "to"))
    if d is None or not sku or not src or not dst:
        return None
    return RecKey(d, sku, src, dst)


def _detail(request: Request, who: Who, key: RecKey, status: int = 200, messages: list | None = None) -> HTMLResponse:
    with W(request).engine.connect() as conn:
        det = queries.transfer_detail(conn, who.user, key)
        if det is None:  # unknown, or outside the user's regions: a refusal keeps its own status
            msgs = [*(messages or []), ("error", i18n.texts(who.user.lang)["not_found"])]
            return render(request, who, "message.html", status=status if messages else 404, messages=msgs)
        rec = det["rec"]
        lane = queries.lane_view(conn, key)
        charts_html = _stock_charts(conn, who.user.lang, rec)
        latest, _ = queries.current_run(conn)
    return render(
        request,
        who,
        "transfer.html",
        status=status,
        r=rec,
        history=det["history"],
        lane=lane,
        charts=charts_html,
        max_qty=rec["quantity"] + max(rec["donor_excess_units"] or 0.0, 0.0),
        current=latest == key.rec_run_date,
        messages=messages or [],
    )


def _stock_charts(conn: sa.Connection, lang: str, rec: dict) -> list[Any]:
    t = i18n.texts(lang)
    out = []
    run_date = rec["run_date"]
    for role, loc, change, day in (
        ("receiver", rec["to_location"], rec["quantity"], rec["arrival_date"]),
        ("donor", rec["from_location"], -rec["quantity"], run_date),
    ):
        proj = queries.projection(conn, run_date, rec["sku"], loc)
        if proj is None or not proj["forecast"]:
            out.append({"role": role, "loc": loc, "svg": None})
            continue
        pol = proj["policy"]
        start = float(pol["available"])
        days, with_mean, with_p50, with_p90 = queries.project_stock(start, proj["forecast"], day, change)
        _, without_mean, _, _ = queries.project_stock(start, proj["forecast"], None, 0.0)
        svg = charts.stock_chart(
            days,
            {t["with_transfer"]: with_mean, t["without_transfer"]: without_mean},
            (with_p90, with_p50),
            {t["reorder_point"]: float(pol["reorder_point"]), t["safety_stock"]: float(pol["safety_stock"])},
            f"{t['projected']}: {rec['sku']} @ {loc}",
            band_label=t["band"],
        )
        out.append({"role": role, "loc": loc, "svg": svg, "policy": pol})
    return out


@router.get("/transfers/view", response_class=HTMLResponse)
def transfer_view(request: Request, who: Annotated[Who, Depends(current)]) -> HTMLResponse:
    key = _key_from(request.query_params)
    if key is None:
        raise HTTPException(400, "date (YYYY-MM-DD), sku, from and to are required")
    return _detail(request, who, key)


@router.post("/transfers/decide", response_class=HTMLResponse)
def transfer_decide(
    request: Request,
    who: Annotated[Who, Depends(posted)],
    date_: Annotated[str, Form(alias="date")] = "",
    sku: Annotated[str, Form()] = "",
    src: Annotated[str, Form(alias="from")] = "",
    dst: Annotated[str, Form(alias="to")] = "",
    run_id: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "0",
    action: Annotated[str, Form()] = "",
    quantity: Annotated[str, Form()] = "",
    reason_code: Annotated[str, Form()] = "",
    reason_text: Annotated[str, Form()] = "",
) -> HTMLResponse:
    key = _key_from({"date": date_, "sku": sku, "from": src, "to": dst})
    if key is None or not version.isdigit():
        raise HTTPException(400, "date, sku, from, to and version are required")
    t = i18n.texts(who.user.lang)
    qty: float | None = None
    if action == "quantity":
        try:
            qty = float(quantity)
        except ValueError:
            return _detail(
                request, who, key, 422, [("error", f"{t['refused']} [quantity]: {quantity!r} is not a number")]
            )
    decision = "reject" if action == "reject" else "approve"
    try:
        with W(request).writer.begin() as conn:
            d = service.decide(
                conn,
                who.user,
                key,
                decision,
                qty,
                reason_code or None,
                reason_text or None,
                int(version),
                rec_run_id=run_id or None,
                approval_limit=W(request).cfg.planner_approval_limit,
            )
    except DecisionRefused as exc:
        return _detail(
            request, who, key, _STATUS.get(exc.rule, 422), [("error", f"{t['refused']} [{exc.rule}]: {exc}")]
        )
    msgs = [("ok", t["saved"].format(what=f"{t[decision]} {_fmt(d.new_quantity)}", v=d.version))]
    msgs += [("warn", f"{t['warning']}: {w}") for w in d.warnings]
    return _detail(request, who, key, 200, msgs)


# ------------------------------------------------------------------------------- purchases
def _purchases(
    request: Request, who: Who, q: str, page: int = 1, status: int = 200, messages: list | None = None
) -> HTMLResponse:
    with W(request).engine.connect() as conn:
        pg = purchases.proposals_page(conn, who.user, page, W(request).cfg.page_size, q, who.user.lang)
    return render(
        request,
        who,
        "purchases.html",
        status=status,
        page=pg,
        q=q,
        reason_codes=purchases.REASON_CODES,
        messages=messages or [],
    )


@router.get("/purchases", response_class=HTMLResponse)
def purchases_page(request: Request, who: Annotated[Who, Depends(current)]) -> HTMLResponse:
    p = request.query_params
    return _purchases(request, who, p.get("q", ""), int(p["page"]) if p.get("page", "").isdigit() else 1)


@router.post("/purchases/decide", response_class=HTMLResponse)
def purchase_decide(
    request: Request,
    who: Annotated[Who, Depends(posted)],
    date_: Annotated[str, Form(alias="date")] = "",
    sku: Annotated[str, Form()] = "",
    location: Annotated[str, Form()] = "",
    run_id: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "0",
    action: Annotated[str, Form()] = "",
    quantity: Annotated[str, Form()] = "",
    supplier: Annotated[str, Form()] = "",
    reason_code: Annotated[str, Form()] = "",
    reason_text: Annotated[str, Form()] = "",
    q: Annotated[str, Form()] = "",
) -> HTMLResponse:
    d = parse_date(date_)
    if d is None or not sku or not location or not version.isdigit():
        raise HTTPException(400, "date (YYYY-MM-DD), sku, location and version are required")
    key = purchases.PurchaseKey(d, sku, location)
    t = i18n.texts(who.user.lang)
    decision = "reject" if action == "reject" else "approve"
    qty: float | None = None
    if decision == "approve" and quantity.strip():
        try:
            qty = float(quantity.replace(",", ""))
        except ValueError:
            msg = f"{t['refused']} [quantity]: {quantity!r} is not a number"
            return _purchases(request, who, q, status=422, messages=[("error", msg)])
    try:
        with W(request).writer.begin() as conn:
            done = purchases.decide(
                conn,
                who.user,
                key,
                decision,
                qty,
                supplier or None,
                reason_code or None,
                reason_text or None,
                int(version),
                rec_run_id=run_id or None,
                approval_limit=W(request).cfg.planner_approval_limit,
            )
    except DecisionRefused as exc:
        msg = f"{t['refused']} [{exc.rule}]: {exc}"
        return _purchases(request, who, q, status=_STATUS.get(exc.rule, 422), messages=[("error", msg)])
    what = f"{t[decision]} {key.sku} @ {key.location} {_fmt(done.new_quantity)}"
    return _purchases(request, who, q, messages=[("ok", t["saved"].format(what=what, v=done.version))])


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, who: Annotated[Who, Depends(current)]) -> HTMLResponse:
    p = request.query_params
    page = int(p["page"]) if p.get("page", "").isdigit() else 1
    atype = p.get("type", "") if p.get("type", "") in i18n.ALERT_TYPES["en"] else ""
    sev = p.get("severity", "") if p.get("severity", "") in ("high", "medium", "low") else ""
    with W(request).engine.connect() as conn:
        pg = queries.alerts_page(conn, who.user, page, W(request).cfg.page_size, atype, sev, p.get("q", ""))
    params = {k: v for k, v in (("type", atype), ("severity", sev), ("q", p.get("q", ""))) if v}
    return render(request, who, "alerts.html", page=pg, atype=atype, sev=sev, q=p.get("q", ""), query=urlencode(params))


@router.get("/sku", response_class=HTMLResponse)
def sku_page(
    request: Request, who: Annotated[Who, Depends(current)], sku: str = "", location: str = ""
) -> HTMLResponse:
    t = i18n.texts(who.user.lang)
    with W(request).engine.connect() as conn:
        data = queries.sku_location(conn, who.user, sku, location)
    if data is None:
        return render(request, who, "message.html", status=404, messages=[("error", t["not_found"])])
    chart = None
    proj = data["projection"]
    if proj and proj["forecast"]:
        pol = proj["policy"]
        days, mean, p50, p90 = queries.project_stock(float(pol["available"]), proj["forecast"], None, 0.0)
        chart = charts.stock_chart(
            days,
            {t["projected"]: mean},
            (p90, p50),
            {t["reorder_point"]: float(pol["reorder_point"])},
            f"{t['projected']}: {sku} @ {location}",
            band_label=t["band"],
        )
    hist = data["history"]
    hist_chart = (
        charts.trend_chart([h["run_date"] for h in hist], [h["on_hand"] for h in hist], t["on_hand"])
        if len(hist) > 1
        else None
    )
    return render(request, who, "sku.html", d=data, chart=chart, hist_chart=hist_chart, sku=sku, location=location)


@router.get("/kpis", response_class=HTMLResponse)
def kpis_page(request: Request, who: Annotated[Who, Depends(current)]) -> HTMLResponse:
    with W(request).engine.connect() as conn:
        data = queries.kpi_trends(conn)
    dates = data["dates"]
    items = [
        {
            "metric": m,
            "latest": vals.get(dates[-1]) if dates else None,
            "svg": charts.trend_chart(dates, [vals.get(d) for d in dates], m),
        }
        for m, vals in sorted(data["metrics"].items())
    ]
    return render(request, who, "kpis.html", items=items, dates=dates)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, who: Annotated[Who, Depends(current)]) -> HTMLResponse:
    with W(request).engine.connect() as conn:
        data = queries.runs(conn)
    return render(request, who, "runs.html", d=data)


@router.get("/upload", response_class=HTMLResponse)
def upload_form(request: Request, who: Annotated[Who, Depends(current)]) -> HTMLResponse:
    return render(request, who, "upload.html", report=None)


@router.post("/upload", response_class=HTMLResponse)
def upload(request: Request, who: Annotated[Who, Depends(posted)], file: UploadFile) -> HTMLResponse:
    t = i18n.texts(who.user.lang)
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    name = file.filename or "upload.csv"
    if len(data) > MAX_UPLOAD_BYTES:
        return render(
            request,
            who,
            "upload.html",
            status=413,
            report=None,
            messages=[("error", f"{name}: larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB")],
        )
    try:
        parsed = parse_decisions(name, data=data, name=name)
    except DecisionsError as exc:
        return render(request, who, "upload.html", status=422, report=None, messages=[("error", str(exc))])
    with W(request).writer.begin() as conn:
        rep = service.import_decisions(
            conn, who.user, parsed, approval_limit=W(request).cfg.planner_approval_limit, source="upload"
        )
    msgs = [("ok", t["imported"].format(n=len(rep.decided)))]
    return render(request, who, "upload.html", report=rep, messages=msgs)


def create_app(cfg: Config, url: str | None = None, secret: str | None = None) -> FastAPI:
    """The workbench on ``url`` (default: the configured reporting database; SQLite is migrated
    first, a server database must already be at the head revision).

    ``secret``: the session-signing secret (default: the environment variable named by
    ``workbench.session_secret_env``; refused when shorter than 32 characters)."""
    wb = cfg.workbench
    db_url = url or cfg.reporting_url()
    _ensure_schema(db_url)
    engine = reporting.engine_for(db_url)
    if secret is not None and len(secret) < auth.MIN_SECRET_LENGTH:
        raise ValueError(f"the session secret must have at least {auth.MIN_SECRET_LENGTH} characters")
    signer = auth.Signer(secret or auth.session_secret(wb), wb.session_max_age_seconds)
    app = FastAPI(title="Tiaobo workbench", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.workbench = Workbench(
        wb, db_url, engine, engine.execution_options(tiaobo_write=True), signer, _templates()
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.middleware("http")(security_headers)
    app.add_exception_handler(LoginRequired, login_required)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.include_router(router)
    return app


@jinja2.pass_context
def _day(ctx: Any, value: Any) -> str:
    """A date shown to the planner in the page's language (2026年11月25日 / 25 Nov 2026); '–' when missing."""
    from pipelines.report import fmt_day

    return fmt_day(value, "zh-CN" if ctx.get("lang") == "zh" else "en") or "–"


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["num"] = _fmt
    env.filters["day"] = _day
    env.globals["rec_url"] = lambda r: rec_url(
        "", RecKey(r["run_date"], r["sku"], r["from_location"], r["to_location"])
    )
    env.globals["sku_url"] = lambda sku, loc: "/sku?" + urlencode({"sku": sku, "location": loc})
    env.globals["reason_codes"] = REASON_CODES
    env.globals["alert_types"] = i18n.ALERT_TYPES
    env.globals["severity_name"] = lambda code, lang: names.pick(names.SEVERITIES, str(code), lang)
    env.globals["action_name"] = lambda code, lang: names.action(str(code), "zh-CN" if lang == "zh" else "en")
    return env


def _ensure_schema(url: str) -> None:
    """Migrate the embedded SQLite database; on a server database the loader migrates (the
    workbench's own role may not run DDL): refuse to start on an older schema."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(reporting.alembic_config()).get_current_head()
    current = reporting.schema_revision(url)
    if current == head:
        return
    if reporting.engine_for(url).dialect.name == "sqlite":
        reporting.migrate(url)
        return
    raise RuntimeError(
        f"the reporting database is at schema revision {current or 'none'}, the workbench needs {head}:"
        " run the migrations as the loader first (tiaobo run, or tiaobo roles as the administrator)"
    )


def _safe_next(target: str) -> str:
    """Only same-site relative paths (no scheme, no //host) are followed after login."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target

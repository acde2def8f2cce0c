// Tiaobo workbench: the only script (CSP script-src 'self'). Select-all checkbox of the transfers table.
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll("input[name=line]").forEach(function (box) { box.checked = all.checked; });
  });
});

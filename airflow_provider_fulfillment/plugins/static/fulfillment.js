// Links to Airflow's own pages (DAG runs, task instances) open in the Airflow UI around this page.
// Airflow shows plugin views in a sandboxed same-origin iframe that may not navigate the top window,
// so the link is handed to the UI's router: push the URL on the parent's history, tell it with popstate.
(function () {
  function inAirflowFrame() {
    try { return window.parent !== window && window.parent.location.origin === window.location.origin; }
    catch (e) { return false; }
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.airflow");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || !inAirflowFrame()) return;
    event.preventDefault();
    var url = new URL(link.href, window.location.href);
    window.parent.history.pushState({}, "", url.pathname + url.search + url.hash);
    window.parent.dispatchEvent(new PopStateEvent("popstate", { state: {} }));
  });
  var select = document.querySelector("form.filters select");
  if (select) select.addEventListener("change", function () { select.form.submit(); });
})();

// The ops dashboard: plain JS over the ops API (no build step at runtime), charts by uPlot. The token comes from the
// URL fragment (#token=…, never sent to a server by the browser) or the form, and is kept in sessionStorage.

(() => {
  const RANGES = { "1h": [3600e3, "minute"], "24h": [86400e3, "hour"], "30d": [30 * 86400e3, "day"] };
  const REFRESH_MS = 5000;
  const $ = (id) => document.getElementById(id);
  const charts = {};
  let token = sessionStorage.getItem("opsToken");

  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    token = fragment.get("token");
    sessionStorage.setItem("opsToken", token);
    fragment.delete("token");
    history.replaceState(null, "", `${location.pathname}${fragment.toString() ? `#${fragment}` : ""}`);
  }

  class Unauthorized extends Error {}

  async function api(path, init = {}) {
    if (!token) throw new Unauthorized("no token");
    const res = await fetch(`/ops/api/${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers || {}) } });
    if (res.status === 401) throw new Unauthorized((await res.json()).detail);
    const body = await res.json();
    if (!res.ok) throw new Error(body.detail || res.statusText);
    return body;
  }

  /** Token base units (6 decimals) as dollars, exact (BigInt), for tables and KPIs. */
  function usd(units) {
    const n = BigInt(units || "0");
    const sign = n < 0n ? "-" : "";
    const abs = n < 0n ? -n : n;
    const cents = abs / 10000n;
    const micro = (abs % 1000000n).toString().padStart(6, "0");
    return `${sign}$${(abs / 1000000n).toLocaleString("en-US")}.${micro.slice(0, cents < 100n ? 6 : 2)}`;
  }
  const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const short = (h) => (h ? `${h.slice(0, 10)}…` : "");
  const payerLink = (a) => `<a href="#payer=${esc(a)}">${esc(short(a))}</a>`;

  function table(id, headers, rows, empty = "none") {
    const head = `<tr>${headers.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>`;
    const body = rows.length
      ? rows.map((r) => `<tr>${r.join("")}</tr>`).join("")
      : `<tr><td colspan="${headers.length}">${empty}</td></tr>`;
    $(id).innerHTML = head + body;
  }
  const td = (v) => `<td>${v}</td>`;
  const num = (v) => `<td class="num">${v}</td>`;

  function kpis(id, items) {
    $(id).innerHTML = items
      .map(([label, value]) => `<div class="kpi" data-kpi="${esc(label)}">${esc(label)}<b>${esc(value)}</b></div>`)
      .join("");
  }

  function chart(id, label, xs, ys, color) {
    const el = $(id);
    el.dataset.points = String(xs.length);
    const data = [xs, ys];
    if (charts[id]) return charts[id].setData(data);
    charts[id] = new uPlot(
      {
        width: Math.max(el.clientWidth, 300),
        height: 240,
        series: [{}, { label, stroke: color, fill: `${color}22`, width: 2, points: { show: true } }],
      },
      data,
      el,
    );
  }

  function show(view) {
    for (const id of ["login", "overview", "payer-page"]) $(id).hidden = id !== view;
  }

  async function overview() {
    const [span, granularity] = RANGES[$("range").value];
    const to = new Date(Date.now() + 60e3);
    const from = new Date(to.getTime() - span);
    const s = await api(`summary?from=${from.toISOString()}&to=${to.toISOString()}&granularity=${granularity}`);
    show("overview");
    const t = s.totals;
    kpis("kpis", [
      ["Revenue", usd(t.revenue)],
      ["Requests", t.requests],
      ["Margin (charged − actual)", usd(t.margin)],
      ["Est. − actual variance", usd(t.variance)],
      ["Payers", t.payers],
      ["Open channel exposure", usd(s.channels.openExposure)],
      ["Failed refunds", s.refunds.stuck.filter((r) => r.status === "failed").length],
    ]);
    const banner = $("recon-banner");
    banner.hidden = false;
    banner.className = `banner ${s.reconciliation.openMismatches ? "bad" : "ok"}`;
    banner.textContent = s.reconciliation.openMismatches
      ? `Ledger and chain disagree: ${s.reconciliation.openMismatches} open mismatch(es)`
      : "Ledger and chain agree (no open mismatches)";
    // Every bucket of the range, empty ones as zero, so the time axis is the range asked for.
    const step = { minute: 60e3, hour: 3600e3, day: 86400e3 }[granularity];
    const byBucket = new Map(s.series.map((b) => [Date.parse(b.bucket), b]));
    const xs = [];
    const revenue = [];
    const requests = [];
    for (let at = Math.floor(from.getTime() / step) * step; at < to.getTime(); at += step) {
      const bucket = byBucket.get(at);
      xs.push(at / 1000);
      revenue.push(bucket ? Number(bucket.revenue) / 1e6 : 0);
      requests.push(bucket ? bucket.requests : 0);
    }
    chart("chart-revenue", "revenue", xs, revenue, "#2a9d8f");
    chart("chart-requests", "requests", xs, requests, "#264653");
    table(
      "stuck-refunds",
      ["payment", "payer", "amount", "status", "error", ""],
      s.refunds.stuck.map((r) => [
        td(esc(short(r.payment_id))),
        td(payerLink(r.payer)),
        num(usd(r.amount)),
        td(esc(r.status)),
        td(esc((r.error || "").slice(0, 60))),
        td(r.status === "failed" ? `<button data-retry="${esc(r.payment_id)}">Retry</button>` : ""),
      ]),
      "nothing stuck",
    );
    table(
      "settlements",
      ["kind", "status", "amount", "tx", "error"],
      s.settlements.unfinished.map((r) => [
        td(esc(r.kind)),
        td(esc(r.status)),
        num(usd(r.amount)),
        td(esc(short(r.tx_hash))),
        td(esc(r.error)),
      ]),
      "all settled",
    );
    table(
      "models",
      ["model", "provider", "requests", "revenue", "actual", "margin"],
      s.byModel
        .slice(0, 10)
        .map((m) => [td(esc(m.model)), td(esc(m.provider)), num(m.requests), num(usd(m.revenue)), num(usd(m.actual)), num(usd(m.margin))]),
    );
    table(
      "payers",
      ["payer", "requests", "revenue"],
      s.topPayers.map((p) => [td(payerLink(p.payer)), num(p.requests), num(usd(p.revenue))]),
    );
    table(
      "channels",
      ["status", "count", "deposits", "accepted", "settled", "exposure"],
      s.channels.byStatus.map((c) => [
        td(esc(c.status)),
        num(c.count),
        num(usd(c.deposits)),
        num(usd(c.accepted)),
        num(usd(c.settled)),
        num(usd(c.exposure)),
      ]),
    );
    table(
      "reconciliation",
      ["stream", "last block", "checked"],
      s.reconciliation.cursors.map((c) => [td(esc(short(c.stream))), num(c.last_block), td(esc(c.checked_at))]),
      "not run yet",
    );
  }

  async function payerPage(address) {
    const [p, payments, requests] = await Promise.all([
      api(`payers/${address}`),
      api(`payments?payer=${address}&limit=50`),
      api(`requests?payer=${address}&limit=50`),
    ]);
    show("payer-page");
    $("payer-address").textContent = address;
    kpis("payer-kpis", [
      ["Requests", p.requests],
      ["Spent", usd(p.spent)],
      ["Prepaid in ledger", usd(p.prepaidBalance)],
      ["First seen", p.firstSeen || "—"],
    ]);
    table(
      "payer-payments",
      ["when", "amount", "status", "tx"],
      payments.items.map((r) => [td(esc(r.created_at)), num(usd(r.amount)), td(esc(r.status)), td(esc(short(r.tx_hash)))]),
    );
    table(
      "payer-requests",
      ["when", "model", "status", "charged", "actual"],
      requests.items.map((r) => [
        td(esc(r.created_at)),
        td(esc(r.model)),
        td(esc(r.status)),
        num(usd(r.charged_cost)),
        num(usd(r.actual_cost)),
      ]),
    );
  }

  async function render() {
    try {
      const payer = new URLSearchParams(location.hash.slice(1)).get("payer");
      if (payer) await payerPage(payer);
      else await overview();
      $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      if (err instanceof Unauthorized) {
        show("login");
        $("login-error").textContent = token ? err.message : "";
      } else $("updated").textContent = `error: ${err.message}`;
    }
  }

  document.addEventListener("click", async (event) => {
    const id = event.target.dataset?.retry;
    if (!id) return;
    event.target.disabled = true;
    event.target.textContent = "Retrying…";
    try {
      await api(`refunds/${id}/retry`, { method: "POST", headers: { "idempotency-key": `dashboard-${crypto.randomUUID()}` } });
    } catch (err) {
      alert(`Retry failed: ${err.message}`);
    }
    await render();
  });
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("opsToken", token);
    void render();
  });
  $("range").addEventListener("change", () => void render());
  window.addEventListener("hashchange", () => void render());
  void render();
  setInterval(() => {
    if (!$("login").hidden) return;
    void render();
  }, REFRESH_MS);
})();

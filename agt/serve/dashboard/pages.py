"""The dashboard's pages, rendered on the server. Every value from the log, the store or the request goes
through :func:`~agt.serve.dashboard._html.esc`; the live parts (stream, votes, kill switch) are filled in by
static/dashboard.js with ``textContent``, never as HTML."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from agt.serve.dashboard._html import Markup, join, render

NAV = (("", "stream"), ("/agents", "agents"), ("/approvals", "approvals"), ("/audit", "audit"))


def _when(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def link(base: str, path: str, text: Any) -> Markup:
    return render('<a href="{href}">{text}</a>', href=base + path, text=text)


def rule_link(base: str, rule: str) -> Markup:
    return render('<a class="rule" href="{href}">{rule}</a>', href=f"{base}/rules/{quote(rule, safe='')}", rule=rule)


def agent_link(base: str, agent: str) -> Markup:
    return render('<a href="{href}">{agent}</a>', href=f"{base}/agents/{quote(agent, safe='')}", agent=agent)


def layout(base: str, title: str, body: Markup, page: str) -> Markup:
    nav = join(render('<a class="{cls}" href="{href}">{name}</a>', cls="here" if name == page else "", href=base + (path or "/"),
                      name=name) for path, name in NAV)
    head = render('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} · agt</title>'
                  '<meta name="viewport" content="width=device-width, initial-scale=1">'
                  '<link rel="stylesheet" href="{base}/static/dashboard.css">'
                  '<script defer src="{base}/static/dashboard.js"></script></head>'
                  '<body data-base="{base}" data-page="{page}"><header><strong>agt</strong> operators\' dashboard',
                  title=title, base=base, page=page)
    operator = Markup('<span class="operator"><label>operator token <input id="operator-token" type="password" '
                      'autocomplete="off" size="18"></label></span>')
    return Markup(head + Markup("<nav>") + nav + Markup("</nav>") + operator + Markup("</header><main>")
                  + render("<h1>{title}</h1>", title=title) + body + Markup("</main></body></html>"))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> Markup:
    head = join(render("<th>{h}</th>", h=h) for h in headers)
    body = join(Markup("<tr>") + join(render("<td>{c}</td>", c=c) for c in row) + Markup("</tr>") for row in rows)
    return Markup(render('<table class="{cls}">', cls=cls) + Markup("<thead><tr>") + head + Markup("</tr></thead><tbody>")
                  + body + Markup("</tbody></table>"))


def stream_page(base: str, filters: Mapping[str, str], plots: Sequence[tuple[str, Markup]], summary: Markup) -> Markup:
    fields = join(render('<label>{name} <input name="{name}" value="{value}" size="14"></label>', name=name,
                         value=filters.get(name, "")) for name in ("agent", "tool", "rule"))
    effect = filters.get("effect", "")
    options = join(render('<option value="{v}"{sel}>{label}</option>', v=v, label=v or "any",
                          sel=Markup(" selected") if v == effect else Markup(""))
                   for v in ("", "allow", "require_approval", "deny"))
    form = Markup('<form id="filters" method="get" class="filters">') + fields + Markup('<label>effect <select name="effect">') + \
        options + Markup('</select></label><button type="submit">filter</button></form>')
    stream = Markup('<p id="stream-state" class="muted">connecting…</p><table id="stream" class="records"><thead><tr>'
                    '<th>seq</th><th>time</th><th>agent</th><th>tool</th><th>gate</th><th>effect</th><th>rules</th>'
                    '<th>outcome</th><th>params</th></tr></thead><tbody></tbody></table>')
    figures = join(render("<figure><figcaption>{caption}</figcaption>", caption=c) + svg + Markup("</figure>") for c, svg in plots)
    return Markup(summary + Markup('<section class="plots">') + figures + Markup("</section><h2>live decisions</h2>")
                  + form + stream)


def summary(items: Sequence[tuple[str, Any, str]]) -> Markup:
    return Markup('<ul class="summary">') + join(render('<li class="{cls}"><span>{label}</span> <b>{value}</b></li>', label=l,
                                                        value=v, cls=c) for l, v, c in items) + Markup("</ul>")


def rule_page(base: str, rule: str, matches: Sequence[Any], covering: Sequence[Any], coverage_errors: Sequence[str],
              suites_dir: str | None) -> Markup:
    rows = [(r.seq, r.timestamp[:23], agent_link(base, r.agent), r.tool, r.effect, r.outcome,
             _short(r.params)) for r in reversed(matches[-100:])]
    recent = table(("seq", "time", "agent", "tool", "effect", "outcome", "params"), rows, "records") if rows else \
        Markup('<p class="muted">no decision in the loaded records names this rule</p>')
    if suites_dir is None:
        cov = Markup('<p class="muted">no conformance suites directory (agt dashboard --suites DIR)</p>')
    elif covering:
        cov = table(("suite", "file", "case", "expected effect"), [(c.suite, c.file, c.case, c.effect) for c in covering])
    else:
        cov = render('<p class="warn">no case in {d} expects this rule: it is not covered by the conformance suites</p>', d=suites_dir)
    errors = join(render('<p class="warn">suite not loaded: {e}</p>', e=e) for e in coverage_errors)
    stream = link(base, f"/?rule={quote(rule, safe='')}", "live stream of this rule")
    return Markup(render('<p>{n} recent decision(s) name this rule · ', n=len(matches)) + stream + Markup("</p><h2>recent matches</h2>")
                  + recent + render("<h2>coverage in the conformance suites ({n} case(s))</h2>", n=len(covering)) + cov + errors)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def agents_page(base: str, rows: Sequence[Sequence[Any]]) -> Markup:
    if not rows:
        return Markup('<p class="muted">no agent in the loaded records yet</p>')
    return table(("agent", "trust", "ring", "tier", "kill switch", "decisions", "denied"), rows)


def agent_page(base: str, agent: str, score: int | None, ring_tier: str, killed: bool | None, kill_problem: str | None,
               trust_svg: Markup, budgets: Sequence[Sequence[Any]], breakers: Sequence[Sequence[Any]] | str,
               recent: Sequence[Any]) -> Markup:
    state = "unknown (the log records no kill switch for it)" if killed is None else ("STOPPED" if killed else "running")
    parts = [render('<ul class="summary"><li><span>trust</span> <b>{s}</b></li><li><span>ring / tier</span> <b>{rt}</b></li>'
                    '<li class="{kcls}"><span>kill switch</span> <b id="kill-state">{state}</b></li></ul>',
                    s="-" if score is None else score, rt=ring_tier, state=state, kcls="deny" if killed else "")]
    if kill_problem is None:
        parts.append(render('<p class="actions"><button class="danger" data-kill="{a}" data-on="1">stop this agent (kill switch)</button> '
                            '<button data-kill="{a}" data-on="0">release the kill switch</button> '
                            '<span class="result" id="kill-result"></span></p>', a=agent))
    else:
        parts.append(render('<p class="muted">kill switch not available here: {p}</p>', p=kill_problem))
    parts.append(Markup("<h2>trust score and ring over time</h2>") + trust_svg)
    parts.append(Markup("<h2>budgets used (per task) against the policy's limits</h2>"))
    parts.append(table(("task", "counter", "used", "limit", ""), budgets) if budgets else
                 Markup('<p class="muted">no task seen for this agent, or no state store to read counters from</p>'))
    parts.append(Markup("<h2>circuit breakers</h2>"))
    parts.append(render('<p class="muted">{b}</p>', b=breakers) if isinstance(breakers, str) else
                 (table(("breaker", "state"), breakers) if breakers else Markup('<p class="muted">no breaker used yet</p>')))
    rows = [(r.seq, r.timestamp[:23], r.kind, r.tool, r.effect, join((rule_link(base, x) for x in r.rules), " "), r.summary)
            for r in reversed(recent[-50:])]
    parts.append(Markup("<h2>recent records</h2>") + table(("seq", "time", "kind", "tool", "effect", "rules", "what happened"), rows, "records"))
    parts.append(Markup("<p>") + link(base, f"/?agent={quote(agent, safe='')}", "live stream of this agent") + Markup("</p>"))
    return join(parts)


def approvals_page(base: str, pending: Sequence[Mapping[str, Any]], others: Sequence[Sequence[Any]], problem: str | None,
                   registry_names: Sequence[str]) -> Markup:
    if problem is not None:
        return render('<p class="warn">{p}</p>', p=problem)
    key = render('<section class="signer"><p>Votes are signed here, in your browser, with your approver key file '
                 '(PKCS#8 PEM, as <code>agt approvals keygen</code> writes it). The key is read by this page only and never '
                 'sent to the dashboard server; the server checks the signature against the approver registry '
                 '({names}).</p><label>approver key file <input id="approver-key" type="file" accept=".pem,.key,text/plain">'
                 '</label> <span id="signer" class="muted">no key selected</span> '
                 '<label>note <input id="vote-note" size="30" maxlength="2000"></label></section>',
                 names=", ".join(registry_names) or "empty: no vote can count")
    cards = []
    for p in pending:
        tampered = p.get("tampered")
        buttons = render('<p class="warn">{t}: do not approve it</p>', t=tampered) if tampered else render(
            '<p class="actions"><button class="approve" data-vote="{id}" data-approve="1" data-digest="{digest}" data-agent="{agent}">approve</button> '
            '<button class="danger" data-vote="{id}" data-approve="0" data-digest="{digest}" data-agent="{agent}">deny</button> '
            '<span class="result" data-result="{id}"></span></p>', id=p["id"], digest=p["digest"], agent=p["agent_id"])
        cards.append(Markup(render('<article class="approval" id="{id}"><h3>{tool} by ', id=p["id"], tool=p["tool"])
                            + agent_link(base, p["agent_id"]) + render(' <small>{id}</small></h3>', id=p["id"])
                            + Markup("<p>rules: ") + join((rule_link(base, r) for r in p["rule_ids"]), ", ")
                            + render(' · approvers: {a} · quorum {q} · votes {v} · expires {e}</p>', a=", ".join(p["approvers"]) or
                                     "any registered", q=p["quorum"], v=", ".join(p["approvals"]) or "none", e=_when(p["expires_at"]))
                            + render('<p>params</p><pre class="params">{params}</pre><details><summary>the whole action '
                                     'document</summary><pre class="action">{doc}</pre></details>',
                                     params=json.dumps(((p["document"] or {}).get("action") or {}).get("params"), indent=2,
                                                       default=str, ensure_ascii=False, sort_keys=True),
                                     doc=json.dumps(p["document"], indent=2, default=str, ensure_ascii=False, sort_keys=True))
                            + render('<p class="muted">digest {d}</p>', d=p["digest"]) + buttons + Markup("</article>")))
    listing = join(cards) if cards else Markup('<p class="muted" id="no-pending">no pending approval request</p>')
    done = table(("id", "agent", "tool", "rules", "status", "votes"), others) if others else Markup("")
    return Markup(key + Markup("<h2>pending</h2>") + listing + (Markup("<h2>decided</h2>") + done if others else Markup("")))


def audit_page(status: Any) -> Markup:
    parts = [render('<ul class="summary"><li class="{cls}"><span>verification</span> <b id="audit-verdict">{v}</b></li>'
                    '<li><span>log</span> <b>{loc}</b></li><li><span>checked with</span> <b>{key}</b></li></ul>',
                    cls="allow" if status.ok else "deny", v="ok" if status.ok else "FAILED" if status.report else "not verified",
                    loc=status.location or "-", key=status.key or "-")]
    if status.error:
        parts.append(render('<p class="warn">{e}</p>', e=status.error))
    r = status.report or {}
    if r:
        parts.append(table(("records", "chained checkpoints", "covered by a checkpoint", "not covered", "witnessed", "strict"),
                           [(r.get("records"), r.get("checkpoints"), r.get("covered_by_checkpoint"),
                             "-" if not r.get("uncovered") else f"{r['uncovered'][0]}..{r['uncovered'][1]}", r.get("witnessed"),
                             r.get("strict"))]))
        for p in r.get("problems", [])[:10]:
            parts.append(render('<p class="warn">problem: {p}</p>', p=p))
        for w in r.get("warnings", []):
            parts.append(render('<p class="muted">warning: {w}</p>', w=w))
    cp = status.last_checkpoint
    parts.append(Markup("<h2>last checkpoint</h2>"))
    parts.append(table(("size", "time", "root"), [(cp.get("size"), cp.get("time"), cp.get("root"))]) if cp else
                 Markup('<p class="muted">no checkpoint yet</p>'))
    parts.append(Markup("<h2>witness</h2>") + render("<p>{w}</p>", w=status.witness))
    return join(parts)

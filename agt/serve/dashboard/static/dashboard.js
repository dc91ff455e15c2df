// agt operators' dashboard: the live parts. Everything from the server is put into the page with textContent
// (never innerHTML): the audit log holds what the agent asked for, and the agent is the adversary.
// Votes are signed here with WebCrypto Ed25519; the approver's key never leaves this page.
"use strict";
(() => {
  const base = document.body.dataset.base || "";
  const TOKEN = "agt-operator-token";

  const tokenInput = document.getElementById("operator-token");
  if (tokenInput) {
    tokenInput.value = sessionStorage.getItem(TOKEN) || "";
    tokenInput.addEventListener("input", () => sessionStorage.setItem(TOKEN, tokenInput.value));
  }

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  function cell(tr, content) {
    const td = el("td");
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content === undefined || content === null ? "" : String(content);
    tr.appendChild(td);
    return td;
  }

  function short(value, limit) {
    let text = typeof value === "string" ? value : JSON.stringify(value === undefined ? null : value);
    if (text === "null") text = "";
    return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
  }

  // --- the live decision stream (server-sent events) ---------------------------------------------
  const stream = document.getElementById("stream");
  if (stream) {
    const tbody = stream.querySelector("tbody");
    const state = document.getElementById("stream-state");
    const events = new EventSource(base + "/events" + window.location.search);
    events.addEventListener("open", () => { state.textContent = "live"; state.dataset.state = "live"; });
    events.addEventListener("error", () => { state.textContent = "reconnecting…"; state.dataset.state = "down"; });
    events.addEventListener("record", (event) => {
      let r;
      try { r = JSON.parse(event.data); } catch (e) { return; }
      const tr = el("tr", null, { "data-seq": r.seq, "class": "kind-" + r.kind + " effect-" + (r.effect || "none") });
      cell(tr, r.seq);
      cell(tr, (r.timestamp || "").slice(11, 23));
      cell(tr, el("a", r.agent, { href: base + "/agents/" + encodeURIComponent(r.agent) }));
      cell(tr, r.tool);
      cell(tr, r.gate);
      cell(tr, r.effect || r.kind);
      const rules = cell(tr, "");
      (r.rules || []).forEach((rule, i) => {
        if (i) rules.appendChild(document.createTextNode(" "));
        rules.appendChild(el("a", rule, { href: base + "/rules/" + encodeURIComponent(rule), "class": "rule" }));
      });
      if ((r.messages || []).length) rules.setAttribute("title", r.messages.join("\n"));
      cell(tr, r.summary);
      cell(tr, short(r.params, 160));
      tbody.insertBefore(tr, tbody.firstChild);
      while (tbody.rows.length > 500) tbody.deleteRow(-1);
    });
  }

  // --- the kill switch (operator token) ---------------------------------------------------------
  document.querySelectorAll("button[data-kill]").forEach((button) => {
    button.addEventListener("click", async () => {
      const out = document.getElementById("kill-result");
      const agent = button.dataset.kill;
      const action = button.dataset.on === "1" ? "kill" : "revive";
      out.textContent = "…";
      try {
        const response = await fetch(base + "/api/agents/" + encodeURIComponent(agent) + "/" + action, {
          method: "POST", headers: { "Authorization": "Bearer " + (sessionStorage.getItem(TOKEN) || "") },
        });
        const body = await response.json();
        if (!response.ok) { out.textContent = "refused: " + body.error; return; }
        out.textContent = action === "kill" ? "stopped" : "released";
        document.getElementById("kill-state").textContent = body.killed ? "STOPPED" : "running";
      } catch (e) {
        out.textContent = "failed: " + e;
      }
    });
  });

  // --- votes, signed in this page -----------------------------------------------------------------
  const keyInput = document.getElementById("approver-key");
  let signer = null;

  function b64url(bytes) {
    let s = "";
    for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function pemBytes(text) {
    const m = /-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/.exec(text);
    if (!m) throw new Error("not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)");
    const raw = atob(m[1].replace(/\s+/g, ""));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  async function loadKey(file) {
    const label = document.getElementById("signer");
    signer = null;
    try {
      const key = await crypto.subtle.importKey("pkcs8", pemBytes(await file.text()), { name: "Ed25519" }, true, ["sign"]);
      const jwk = await crypto.subtle.exportKey("jwk", key);
      const known = await (await fetch(base + "/api/approvers")).json();
      const match = (known.approvers || []).find((a) => a.x === jwk.x);
      if (!match) { label.textContent = "this key is not in the approver registry: its votes would not count"; return; }
      signer = { name: match.name, did: match.did, key: key };
      label.textContent = "signing as " + match.name;
    } catch (e) {
      label.textContent = "cannot use this key file: " + (e && e.message ? e.message : e);
    }
  }

  if (keyInput) keyInput.addEventListener("change", () => { if (keyInput.files[0]) loadKey(keyInput.files[0]); });

  // The signed payload is agt's canonical JSON (sorted keys, no spaces, UTF-8), as agt.runtime.votes signs it.
  // Times are whole seconds, so both sides print the numbers the same way.
  function canonical(payload) {
    const sorted = {};
    for (const k of Object.keys(payload).sort()) sorted[k] = payload[k];
    return JSON.stringify(sorted);
  }

  document.querySelectorAll("button[data-vote]").forEach((button) => {
    button.addEventListener("click", async () => {
      const id = button.dataset.vote;
      const out = document.querySelector('[data-result="' + CSS.escape(id) + '"]');
      if (!signer) { out.textContent = "select your approver key file first"; return; }
      const now = Math.floor(Date.now() / 1000);
      const payload = {
        type: "agt.approval-vote/v1", request_id: id, digest: button.dataset.digest, agent_id: button.dataset.agent,
        approve: button.dataset.approve === "1", approver: signer.name, did: signer.did, issued_at: now,
        expires_at: now + 3600, note: (document.getElementById("vote-note") || { value: "" }).value,
      };
      out.textContent = "signing…";
      try {
        const signature = await crypto.subtle.sign({ name: "Ed25519" }, signer.key, new TextEncoder().encode(canonical(payload)));
        const response = await fetch(base + "/api/approvals/" + encodeURIComponent(id) + "/vote", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify(Object.assign({}, payload, { signature: b64url(signature) })),
        });
        const body = await response.json();
        if (!response.ok) { out.textContent = "refused: " + body.error; return; }
        // The waiting call may use the approval before this answer is built: then the request is already consumed.
        const status = body.status === "consumed" ? "approved (and already used by the waiting call)" : body.status;
        out.textContent = (body.approve ? "approve" : "deny") + " vote by " + body.voted_by + " counted: request " + status;
        document.querySelectorAll('button[data-vote="' + CSS.escape(id) + '"]').forEach((b) => { b.disabled = true; });
      } catch (e) {
        out.textContent = "failed: " + (e && e.message ? e.message : e);
      }
    });
  });
})();

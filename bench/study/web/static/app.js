// The participant screens of a user study (docs/PROTOCOLS.md §7; the API is described in
// bench/study/web/api.py). Consent, instructions, practice (not recorded), the trials, the
// end screen. Times: performance.now() from the first animation frame after both images
// are decoded and on screen to the press, minus the time the tab was hidden.

const API = "/take/api/";
const HEARTBEAT_MS = 10000;
const url = new URL(location.href);
const S = {
  study: url.searchParams.get("study") || "",
  p: url.searchParams.get("p") || null,
  t: url.searchParams.get("t") || null,
  tab: tabId(),
  lastCall: 0,
  trial: null, // {k, practice, w, h, shown, hidden, hiddenAt, busy}
  texts: null,
};
const $ = (id) => document.getElementById(id);

function tabId() {
  let v = sessionStorage.getItem("bench_tab");
  if (!v) {
    const a = new Uint8Array(16);
    crypto.getRandomValues(a);
    v = [...a].map((b) => b.toString(16).padStart(2, "0")).join("");
    sessionStorage.setItem("bench_tab", v);
  }
  return v;
}

function query() {
  const q = {};
  for (const [k, v] of url.searchParams) if (!(k in q)) q[k] = v;
  return q;
}

async function call(name, extra) {
  const body = {study: S.study, p: S.p, t: S.t, tab: S.tab, ...extra};
  S.lastCall = Date.now();
  let r;
  try {
    r = await fetch(API + name, {method: "POST", body: JSON.stringify(body),
                                 headers: {"Content-Type": "application/json"},
                                 cache: "no-store", credentials: "omit"});
  } catch (e) {
    return {error: "The connection was lost. Please check your connection and try again.",
            status: 0};
  }
  let data = {};
  try { data = await r.json(); } catch (e) { data = {}; }
  if (!r.ok) return {error: data.error || "Something went wrong. Please try again.",
                     status: r.status};
  return data;
}

// ---------------------------------------------------------------- text screens

function text(title, paragraphs, buttons = [], extra = "") {
  $("trial").hidden = true;
  $("text").hidden = false;
  $("title").textContent = title;
  const body = $("body");
  body.replaceChildren();
  for (const p of [].concat(paragraphs)) {
    if (!p) continue;
    const el = document.createElement("p");
    el.textContent = String(p).replace(/\*\*/g, "");
    body.append(el);
  }
  $("extra").textContent = extra;
  const box = $("buttons");
  box.replaceChildren();
  for (const [label, fn, primary] of buttons) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (primary) b.className = "primary";
    b.addEventListener("click", () => { for (const x of box.children) x.disabled = true; fn(); });
    box.append(b);
  }
}

function problem(message) {
  text("Study", [message], [["Try again", () => location.reload(), false]]);
}

function paragraphs(s) { return String(s || "").split(/\n\s*\n/); }

function consent() {
  text("Welcome", paragraphs(S.texts.consent),
       [["I agree", agree, true], ["I do not agree", decline, false]]);
}

async function agree() {
  const r = await call("consent", {agree: true});
  if (r.error) return problem(r.error);
  if (r.stage === "returned") return returned();
  instructions();
}

async function decline() {
  const r = await call("consent", {agree: false});
  if (r.error) return problem(r.error);
  text("Thank you", ["You chose not to take part; nothing more is recorded. You can close "
                     + "this page."]);
}

function returned() {
  text("Thank you", ["You have returned this study; nothing more is recorded."]);
}

function practiceAt() { return Number(sessionStorage.getItem("bench_practice:" + S.p) || 0); }
function setPracticeAt(k) { sessionStorage.setItem("bench_practice:" + S.p, String(k)); }

function instructions() {
  const n = S.texts.n_practice;
  text("How it works", paragraphs(S.texts.instructions),
       [[n ? `Start the practice (${n} pairs)` : "Start", n ? startPractice : begin, true]]);
}

async function startPractice() {
  setPracticeAt(0);
  show(await call("trial", {practice: 0, ...viewport()}));
}

function ready(note) {
  text("The study begins",
       [`The practice is over. Now come ${S.texts.n_trials} photo pairs; your answers are `
        + "recorded. Answer as quickly and as accurately as you can."],
       [["Begin", begin, true]], note ? `Last practice pair: ${note}` : "");
}

async function begin() { show(await call("trial", {practice: null, ...viewport()})); }

function end(e) {
  const lines = [e.debrief, "You have answered every photo pair; your answers are saved."];
  lines.push(`Your participant code: ${e.participant}`);
  if (e.contact) lines.push(e.contact);
  if (e.code) lines.push("Your completion code (enter it on the study platform):");
  text("Thank you!", lines, e.redirect ? [["Return to the study platform",
                                            () => location.assign(e.redirect), true]] : []);
  if (e.code) $("extra").textContent = e.code;
  $("extra").className = e.code ? "code" : "";
  if (e.redirect) setTimeout(() => location.assign(e.redirect), 5000);
}

// ---------------------------------------------------------------- the trial screen

function viewport() {
  return {vw: window.innerWidth, vh: window.innerHeight, dpr: window.devicePixelRatio || 1};
}

function show(r, note) {
  if (r.error) return problem(r.error);
  if (r.kind === "trial") return trial(r, note);
  if (r.kind === "ready") return ready(note);
  if (r.kind === "end") return end(r);
  problem("Something went wrong. Please reload this page.");
}

function load(src) {
  const img = new Image();
  img.alt = "";
  img.draggable = false;
  img.src = src;
  return img.decode().then(() => img);
}

async function trial(r, note) {
  let q, d;
  try {
    [q, d] = await Promise.all([load(r.query.src), load(r.image.src)]);
  } catch (e) {
    return problem("The photos could not be loaded. Please check your connection and try "
                   + "again.");
  }
  $("text").hidden = true;
  $("trial").hidden = false;
  $("qpanel").replaceChildren(q);
  $("dpanel").replaceChildren(d);
  $("fill").style.width = r.practice ? "0" : `${(100 * (r.k - 1)) / r.n}%`;
  const head = r.practice ? `Practice ${r.k} of ${r.n} (not recorded)`
                          : `Photo pair ${r.k} of ${r.n}`;
  $("heading").textContent = note ? `${head} · ${note}` : head;
  $("absent").disabled = false;
  S.trial = {k: r.k, practice: r.practice, w: r.image.w, h: r.image.h, img: d, q,
             qw: r.query.w, qh: r.query.h, shown: null, hidden: 0, hiddenAt: null,
             busy: false, pressAt: null};
  size(S.trial);
  document.body.dataset.trial = `${r.practice ? "p" : "t"}${r.k}`;
  document.body.dataset.shown = "";
  markShown(S.trial);
}

// one height for both images: the largest at which each fits its column and the height
// left below the prompt (at most 3x the larger original)
function size(tr) {
  const panel = $("dpanel").getBoundingClientRect();
  const pw = Math.max(panel.width, 50), ph = Math.max(panel.height, 50);
  const h = Math.floor(Math.min(ph, pw * tr.qh / tr.qw, pw * tr.h / tr.w,
                                3 * Math.max(tr.qh, tr.h)));
  for (const [img, w0, h0] of [[tr.q, tr.qw, tr.qh], [tr.img, tr.w, tr.h]]) {
    img.style.height = `${h}px`;
    img.style.width = `${Math.floor(h * w0 / h0)}px`;
  }
}
window.addEventListener("resize", () => { if (S.trial) size(S.trial); });

function markShown(tr) {
  if (document.visibilityState !== "visible") return; // visibilitychange calls again
  requestAnimationFrame(() => requestAnimationFrame(() => {
    if (S.trial === tr && tr.shown === null) {
      tr.shown = performance.now();
      document.body.dataset.shown = "1";
    }
  }));
}

document.addEventListener("visibilitychange", () => {
  const tr = S.trial;
  if (!tr) return;
  const now = performance.now();
  if (document.visibilityState === "hidden") {
    if (tr.shown !== null && tr.hiddenAt === null) tr.hiddenAt = now;
  } else {
    if (tr.hiddenAt !== null) { tr.hidden += now - tr.hiddenAt; tr.hiddenAt = null; }
    if (tr.shown === null) markShown(tr);
  }
});

function times(at) {
  const tr = S.trial;
  let hidden = tr.hidden;
  if (tr.hiddenAt !== null) hidden += Math.max(0, at - tr.hiddenAt);
  const total = Math.max(0, at - tr.shown);
  return {browser_ms: Math.round(Math.max(0, total - hidden) * 10) / 10,
          hidden_ms: Math.round(hidden * 10) / 10};
}

async function answer(kind, at, x, y) {
  const tr = S.trial;
  if (!tr || tr.busy || tr.shown === null) return;
  tr.busy = true;
  $("absent").disabled = true;
  const body = {k: tr.k, practice: tr.practice, answer: kind, ...times(at), ...viewport()};
  if (kind === "click") { body.x = x; body.y = y; }
  const r = await call("answer", body);
  if (r.error) {
    if (r.status === 429 || r.status === 0) { // keep the trial; the participant answers again
      tr.busy = false;
      $("absent").disabled = false;
      $("heading").textContent = r.error;
      return;
    }
    return problem(r.error);
  }
  if (tr.practice) setPracticeAt(tr.k);
  S.trial = null;
  show(r.next, r.note);
}

$("dpanel").addEventListener("pointerdown", (e) => {
  const tr = S.trial;
  if (!tr || e.button !== 0) return;
  const b = tr.img.getBoundingClientRect();
  if (!b.width || !b.height) return;
  // image pixels of the original; outside the drawn image the position is kept as it is
  const x = ((e.clientX - b.left) / b.width) * tr.w;
  const y = ((e.clientY - b.top) / b.height) * tr.h;
  answer("click", e.timeStamp, x, y);
});
$("absent").addEventListener("pointerdown", (e) => { if (S.trial) S.trial.pressAt = e.timeStamp; });
$("absent").addEventListener("click", (e) => {
  if (!S.trial) return;
  answer("not_present", S.trial.pressAt ?? e.timeStamp);
});

setInterval(async () => {
  if (!S.p || !S.t || Date.now() - S.lastCall < HEARTBEAT_MS - 500) return;
  const r = await call("beat", {});
  if (r.error && r.status === 409) problem(r.error);
}, 2000);

// ---------------------------------------------------------------- start

async function start() {
  const r = await call("enter", {q: query()});
  if (r.error) return problem(r.error);
  S.texts = r.texts;
  if (r.stage === "preview") {
    return text("Study", ["Please accept the task on the platform to start the study."]);
  }
  S.p = r.p;
  S.t = r.t;
  url.searchParams.set("p", r.p);
  url.searchParams.set("t", r.t);
  history.replaceState(null, "", url.pathname + "?" + url.searchParams.toString());
  if (r.stage === "done") return end(r.end);
  if (r.stage === "returned") return returned();
  if (r.stage === "consent") return consent();
  if (r.stage === "trials") return begin();
  const k = practiceAt();
  if (k > 0) return show(await call("trial", {practice: k, ...viewport()}));
  instructions();
}

start();

"""User study: can a person find the query object in a retrieved image, and does a drawn
region help? (after the user study of the PROxford / PRParis paper, ICCV 2023;
docs/PROTOCOLS.md §7)

The experimenter's page (participants never see Streamlit: their screens are
:mod:`bench.study.web`, at ``/take``): set up a study on the dataset
chosen in the sidebar (``bench.study.store.create_study``), hand out participant links,
and follow it on a dashboard (live counts per condition and Latin-square row, balance,
completion, active sessions) with the analysis of ``bench.study.stats.report`` (cached
per study-file stamp through ``bench.app.loaders.HASH_FUNCS``), its figure and CSV / JSON export.
Study files live in the data folder (``$BENCH_STUDY_DIR``, else ``./studies``): the page
takes no folder from the user.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from bench.app import context, deferred, routing, state, widgets
from bench.app.loaders import HASH_FUNCS
from bench.errors import BenchError
from bench.study.design import GROUND_TRUTH, NONE, condition_label
from bench.study.export import tidy_csv
from bench.study.platforms import participant_link
from bench.study.records import to_csv
from bench.study.stats import report
from bench.study.store import (
    StudyStore,
    create_study,
    default_data_dir,
    list_studies,
    study_file,
)

routing.ensure_routed()

TITLE = "User study: do pixel-level results help?"
BAR_COLORS = ("#8b949e", "#2ea043", "#1f6feb", "#f08800", "#a371f7", "#db61a2", "#3fb950",
              "#d29922")


# ---------------------------------------------------------------- data

@st.cache_data(show_spinner="Analysing the study…", max_entries=16, hash_funcs=HASH_FUNCS)
def _analysis(data_dir: Path, name: str, version: tuple) -> dict:
    state = _store(data_dir, name).state()
    table, book = tidy_csv(state)
    return {"report": report(state), "answers_csv": table, "codebook_csv": book}


def analysis(data_dir: Path, name: str) -> dict:
    """The study's report, its tidy table and codebook as CSV (bench.study.export); the
    store's version (it changes with every answer or consent) is in the cache key."""
    return _analysis(data_dir, name, _store(data_dir, name).version())


def _store(data_dir: Path, name: str) -> StudyStore:
    """The study's store (a JSON Lines study of the earlier store is imported the first
    time; the message is shown once)."""
    key = f"_study_store:{data_dir}:{name}"
    if key not in st.session_state:
        store = StudyStore.open(name, data_dir)
        st.session_state[key] = store
        if store.notice:
            st.toast(store.notice, icon=":material/database:")
    return st.session_state[key]


def base_url() -> str:
    """``scheme://host:port`` of this server as the browser reached it ("" if unknown)."""
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - no browser context (e.g. a test)
        url = None
    if not url:
        return ""
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}" if u.scheme and u.netloc else ""


def participant_ids(n: int) -> list[str]:
    """``P01 … Pn`` (as many digits as *n* needs, at least two)."""
    width = max(2, len(str(n)))
    return [f"P{k:0{width}d}" for k in range(1, n + 1)]


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _ci(ci, pct: bool = True) -> str:
    if not ci or ci[0] is None:
        return "—"
    if pct:
        return f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    return f"[{ci[0] / 1000:.2f}, {ci[1] / 1000:.2f}]"


def _s(ms) -> float | None:
    return None if ms is None else ms / 1000


def _p(x) -> str:
    return "—" if x is None else (f"{x:.3g}" if x >= 0.001 else f"{x:.1e}")


def _num(x, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


# ---------------------------------------------------------------- set-up

def setup_form(data_dir: Path) -> None:
    """The form that creates a study on the sidebar's dataset."""
    c = context.ctx()
    ds = c.dataset
    if ds is None:
        st.info("Choose a dataset in the sidebar (the demo or a folder in the released "
                "layout) to set up a study on it.")
        return
    if ds.pair_labels is None:
        st.warning(f"Dataset {ds.name} has no pixel labels ({ds.short}_pair2labelpath.npy): "
                   "a study needs the ground-truth regions to score clicks and to draw them.")
        return
    methods = sorted(name for name, mf in ds.methods.items() if mf.matches)
    options = [NONE, GROUND_TRUTH] + [f"method:{m}" for m in methods]
    where = "the embedded demo (synthetic)" if c.synthetic else f"`{c.root}`"
    st.markdown(f"Dataset **{ds.name}** from {where} (change it in the sidebar). The study "
                f"file goes to `{data_dir}`.")
    taken = set(list_studies(data_dir))
    st.session_state.setdefault("sn_name", next(f"study-{k}" for k in range(1, len(taken) + 2)
                                                if f"study-{k}" not in taken))
    with st.form("study_new", border=True):
        a, b = st.columns([2, 3])
        a.text_input("Study name", max_chars=100, key="sn_name",
                     help="Letters, digits, '.', '_', '-'; it names the study file and "
                          "appears in the participant link.")
        b.multiselect("Conditions", options, default=[NONE, GROUND_TRUTH], key="sn_conds",
                      format_func=condition_label, max_selections=8,
                      help="What is drawn on the database image: nothing, the ground-truth "
                           "region, or a method's predicted region. Each participant sees "
                           "every condition, balanced by a Latin square over the "
                           "participants.")
        c1, c2, c3, c4, c5 = st.columns(5)
        c1.number_input("Trials per participant", 1, 500, 20, step=1, key="sn_trials")
        c2.number_input("Catch share", 0.0, 0.9, 0.2, step=0.05, format="%.2f",
                        key="sn_catch", help="Share of trials whose image does not show the "
                                             "object (the right answer is 'Not in this "
                                             "image').")
        c3.number_input("Seed", 0, 2**32 - 1, 0, step=1, key="sn_seed")
        c4.number_input("Practice trials", 0, 10, 2, step=1, key="sn_practice",
                        help="Shown first, not recorded.")
        c5.selectbox("Order", ["shuffled", "blocked"], key="sn_order",
                     help="shuffled: every participant's own random order; blocked: one "
                          "condition after another (Williams design).")
        p1, p2, p3 = st.columns([1, 1, 2])
        p1.selectbox("Platform", ["none", "prolific", "mturk", "param:"], key="sn_platform",
                     help="Where participants come from: none (links you hand out), "
                          "Prolific, MTurk, or param:NAME (the participant id in the query "
                          "parameter NAME; complete the name).")
        p2.text_input("Completion code", key="sn_code", max_chars=64,
                      help="Shown at the end. Empty: Prolific gets one code made for the "
                           "study; otherwise each participant gets their own.")
        p3.text_input("Completion URL", key="sn_url", max_chars=2000,
                      help="Where the end screen sends participants ({code} is replaced by "
                           "the code). Empty: Prolific's completion page on Prolific.")
        st.text_input("param:NAME — the parameter name", key="sn_param", max_chars=32,
                      help="Only for the platform param:")
        st.checkbox("Allow a participant to meet a query more than once", key="sn_repeats",
                    help="Only for small datasets: by default every trial has its own query "
                         "(seeing an object once outlined makes it easier to find later), "
                         "and a design that needs more queries than the dataset has is "
                         "refused (docs/PROTOCOLS.md §7.2).")
        with st.expander("Texts shown to participants (empty: the defaults)"):
            st.text_area("Consent", value="", height=120, key="sn_consent")
            st.text_area("Instructions", value="", height=120, key="sn_instructions")
        st.form_submit_button("Create study", type="primary", icon=":material/add:",
                              on_click=_create, args=(data_dir, ds.name,
                                                      None if c.synthetic else c.root))
    done = st.session_state.pop("_study_created", None)
    if done is None:
        return
    kind, text, warnings = done
    for w in warnings:
        st.warning(w)
    (st.success if kind == "ok" else st.error)(text)


def _create(data_dir: Path, dataset: str, root: Path | None) -> None:
    """The form's callback (it runs before the page, so no rerun can lose the press):
    create the study from the form's values; the outcome is shown by :func:`setup_form`."""
    ss = st.session_state
    name = (ss.get("sn_name") or "").strip()
    conds = list(ss.get("sn_conds") or [])
    if not conds:
        ss["_study_created"] = ("error", "Choose at least one condition.", [])
        return
    try:
        study_file(data_dir, name)
    except ValueError as e:
        ss["_study_created"] = ("error", str(e), [])
        return
    options = {"order": ss.get("sn_order", "shuffled"),
               "n_practice": int(ss.get("sn_practice", 2)),
               "allow_repeats": bool(ss.get("sn_repeats", False))}
    platform = ss.get("sn_platform") or "none"
    if platform == "param:":
        platform += (ss.get("sn_param") or "").strip()
    options["platform"] = platform
    options["completion_code"] = (ss.get("sn_code") or "").strip() or None
    options["completion_url"] = (ss.get("sn_url") or "").strip() or None
    for key in ("consent", "instructions"):
        text = (ss.get(f"sn_{key}") or "").strip()
        if text:
            options[key] = text
    try:
        store, warnings = create_study(
            name, dataset, root=root, conditions=conds, n_trials=int(ss.get("sn_trials", 20)),
            catch=float(ss.get("sn_catch", 0.2)), seed=int(ss.get("sn_seed", 0)),
            data_dir=data_dir, **options)
    except (BenchError, ValueError) as e:
        ss["_study_created"] = ("error", str(e), [])
        return
    d = store.definition
    name = d.study
    state.put("study", name)
    if d.platform == "none":
        link = (f"`{participant_link(name, 'none', base=base_url())}&p=<participant id>` "
                "(the Studies tab lists one link per participant)")
    else:
        link = f"for {d.platform}: `{participant_link(name, d.platform, base=base_url())}`"
        if d.completion_code:
            link += f"; completion code `{d.completion_code}`"
    from bench.study.design import design_warnings

    src = d.catch_sources
    design = (f" Design: {d.n_catch} catch trials ({src['hard']} hard negatives, "
              f"{src['random']} random), at least {d.catch_per_condition} per condition and "
              f"participant; every query met {d.meetings} time(s).")
    ss["_study_created"] = ("ok", f"Study **{name}** created. Its participant link {link}."
                            + design, list(warnings) + design_warnings(d))


# ---------------------------------------------------------------- dashboard

def links(store: StudyStore, rep: dict, active: list[str]) -> None:
    """The participant links of a study without a recruiting platform, one per person:
    random ids (``store.participant_ids``: unguessable, the same on every visit; safe to
    send over the internet) or lab ids P01…Pn (guessable: only for a lab), with their
    state."""
    name = store.definition.study
    base = base_url()
    head = participant_link(name, "none", base=base)
    kind = st.radio("Participant ids", ["random (safe online)", "lab (P01, P02, …)"],
                    horizontal=True, key="study_id_kind",
                    help="Random ids cannot be guessed: each link is one person's. Lab ids "
                         "can be guessed by anyone who sees one: use them only in a lab.")
    lab = kind.startswith("lab")
    st.markdown("**Participant links** (one per person; the first browser that opens a "
                "link owns it):")
    n = st.number_input("Participant ids to list", 1, 999, 12, step=1, key="study_n_ids")
    known = {p["participant"]: p for p in rep["participants"]["list"]}
    ids = participant_ids(int(n)) if lab else store.participant_ids(int(n))
    st.code(f"{head}&p={ids[0]}", language=None)
    ids += [p for p in known if p not in ids]
    n_trials = rep["design"]["n_trials"]
    rows = []
    for pid in ids:
        k = known.get(pid)
        status = ("not started" if k is None else "complete" if k["complete"]
                  else "active now" if pid in active else "started")
        rows.append({"participant": pid, "link": f"{head}&{urlencode({'p': pid})}",
                     "row": None if k is None else k["row"],
                     "answered": 0 if k is None else k["answered"],
                     "of": n_trials, "status": status})
    st.dataframe(rows, hide_index=True, width="stretch", key="study_links",
                 column_config={"link": st.column_config.LinkColumn("link", width="large"),
                                "answered": st.column_config.ProgressColumn(
                                    "answered", min_value=0, max_value=n_trials,
                                    format="%d")})
    st.download_button("Participant links (CSV)",
                        to_csv(rows, ["participant", "link", "row", "answered", "status"]),
                        file_name=f"{name}-links.csv", mime="text/csv",
                        icon=":material/download:")


def platform_link(store: StudyStore) -> None:
    """The link to paste into the study's recruiting platform, and its completion."""
    d = store.definition
    st.markdown(f"**Participant link for {d.platform}** (paste it into the platform; it "
                "fills in the participant's id):")
    st.code(participant_link(d.study, d.platform, base=base_url()), language=None)
    if d.completion_code:
        st.markdown(f"Completion code (the same for everyone): `{d.completion_code}`")
    else:
        st.caption("Every participant gets a completion code of their own at the end "
                   "(in the tidy table's completion_code column).")
    if d.completion_url or d.platform == "prolific":
        st.caption("At the end, participants are sent on to the platform's completion "
                   "address.")


@st.fragment(run_every=10)
def live(data_dir: Path, name: str) -> None:
    """Counts that change while participants work (refreshed every 10 s)."""
    try:
        rep = analysis(data_dir, name)["report"]
        active = _store(data_dir, name).active_sessions()
    except BenchError as e:
        st.error(str(e), icon=":material/error:")
        return
    p = rep["participants"]
    m = st.columns(5)
    m[0].metric("Participants", p["assigned"], help="Ids that opened their link.")
    m[1].metric("Started", p["started"], help="With at least one answer.")
    m[2].metric("Completed", p["completed"])
    m[3].metric("Answers", rep["n_answers"])
    m[4].metric("Active now", len(active), help="Sessions renewed in the last 30 s.")
    labels = rep["design"]["condition_labels"]
    a, b = st.columns(2)
    with a:
        st.markdown("**Balance over the Latin square** (a row = a group; participants are "
                    "assigned round-robin in order of arrival)")
        st.dataframe([{"group (row)": r["row"],
                       "conditions by block": " · ".join(labels[c] for c in
                                                         r["conditions_by_block"]),
                       "assigned": r["assigned"], "completed": r["completed"],
                       "answers": r["answers"]} for r in p["rows"]],
                     hide_index=True, width="stretch")
    with b:
        st.markdown("**Answers per condition**")
        st.dataframe([{"condition": v["label"], "answers": v["n"],
                       "positive": v["n_positive"], "catch": v["n_catch"],
                       "participants": v["participants"], "flagged": v["flagged"]}
                      for v in rep["conditions"].values()],
                     hide_index=True, width="stretch")
    with st.expander(f"Participants ({len(p['list'])}) and active sessions"):
        st.dataframe([{"participant": x["participant"], "group (row)": x["row"],
                       "arrival": x["index"] + 1, "answered": x["answered"],
                       "complete": x["complete"], "active now": x["participant"] in active,
                       "first seen": x["assigned_at"]} for x in p["list"]],
                     hide_index=True, width="stretch")


def condition_table(rep: dict) -> list[dict]:
    return [{"condition": v["label"], "answers": v["n"], "hits": v["hits"],
             "misses": v["misses"], "false alarms": v["false_alarms"],
             "correct rejections": v["correct_rejections"],
             "accuracy": _pct(v["accuracy"]), "accuracy 95% CI": _ci(v["accuracy_ci"]),
             "hit rate": _pct(v["hit_rate"]), "hit rate 95% CI": _ci(v["hit_rate_ci"]),
             "false-alarm rate": _pct(v["false_alarm_rate"]),
             "false-alarm 95% CI": _ci(v["false_alarm_rate_ci"]),
             "d′": _num(v["dprime"]),
             "median time (s)": _num(_s(v["time_ms"]["median"])),
             "median 95% CI": _ci(v["time_ms"]["median_ci"], pct=False),
             "mean time (s)": _num(_s(v["time_ms"]["mean"])),
             "mean 95% CI": _ci(v["time_ms"]["mean_ci"], pct=False),
             "timed trials": v["time_ms"]["n"],
             "server median (s)": _num(_s(v["server_ms_median"])),
             "timeouts": v["timeouts"], "flagged": v["flagged"]}
            for v in rep["conditions"].values()]


def figure(rep: dict) -> go.Figure:
    """Hit rate, false-alarm rate (exact 95% intervals) and median browser time (bootstrap
    95% interval) per condition."""
    conds = rep["design"]["conditions"]
    labels = [rep["conditions"][c]["label"] for c in conds]
    colors = [BAR_COLORS[k % len(BAR_COLORS)] for k in range(len(conds))]
    fig = make_subplots(rows=1, cols=3, subplot_titles=(
        "Hit rate (positives)", "False-alarm rate (catch trials)", "Median browser time (s)"))

    def bars(col: int, values, cis, scale: float) -> None:
        ys = [None if v is None else v * scale for v in values]
        up = [None if v is None or ci[1] is None else ci[1] * scale - v * scale
              for v, ci in zip(values, cis, strict=True)]
        lo = [None if v is None or ci[0] is None else v * scale - ci[0] * scale
              for v, ci in zip(values, cis, strict=True)]
        fig.add_trace(go.Bar(x=labels, y=ys, marker_color=colors, showlegend=False,
                             error_y=dict(type="data", array=up, arrayminus=lo,
                                          visible=True)), row=1, col=col)

    cs = [rep["conditions"][c] for c in conds]
    bars(1, [v["hit_rate"] for v in cs], [v["hit_rate_ci"] for v in cs], 100)
    bars(2, [v["false_alarm_rate"] for v in cs], [v["false_alarm_rate_ci"] for v in cs], 100)
    bars(3, [v["time_ms"]["median"] for v in cs], [v["time_ms"]["median_ci"] for v in cs],
         1 / 1000)
    fig.update_yaxes(range=[0, 100], ticksuffix="%", row=1, col=1)
    fig.update_yaxes(range=[0, 100], ticksuffix="%", row=1, col=2)
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10), bargap=0.35)
    return fig


def paired_tables(rep: dict) -> None:
    labels = rep["design"]["condition_labels"]
    names = {"accuracy": "Accuracy", "hit_rate": "Hit rate", "dprime": "d′",
             "time_ms": "Median browser time"}
    for measure, block in rep["paired"].items():
        f = block["friedman"]
        head = f"**{names.get(measure, measure)}**"
        if f is not None:
            head += (f" · Friedman over {f['n']} participants: χ² = {_num(f['statistic'])}, "
                     f"p = {_p(f['p'])}, Kendall's W = {_num(f['kendall_w'])}")
        st.markdown(head)
        scale = 1 / 1000 if measure == "time_ms" else 1
        st.dataframe([{"a": labels[r["a"]], "b": labels[r["b"]], "participants": r["n"],
                       "mean a": _num(None if r["mean_a"] is None else r["mean_a"] * scale, 3),
                       "mean b": _num(None if r["mean_b"] is None else r["mean_b"] * scale, 3),
                       "mean a − b": _num(None if r["mean_diff"] is None
                                          else r["mean_diff"] * scale, 3),
                       "Wilcoxon p": _p(r["wilcoxon"]["p"]),
                       "Wilcoxon p (Holm)": _p(r["wilcoxon"]["p_holm"]),
                       "paired t": _num(r["t"]["statistic"]),
                       "t p": _p(r["t"]["p"]), "t p (Holm)": _p(r["t"]["p_holm"]),
                       "d_z": _num(r["effect"]["dz"]),
                       "rank-biserial r": _num(r["effect"]["rank_biserial"])}
                      for r in block["pairwise"]], hide_index=True, width="stretch")
    st.caption("Each participant gives one value per condition (times: the median browser "
               "time, in seconds); Wilcoxon signed-rank and paired t tests over the "
               "participants with both values, Holm-adjusted over the pairs of conditions; "
               "d_z = mean / sd of the differences; r = matched-pairs rank-biserial.")


def items_table(rep: dict) -> None:
    labels = rep["design"]["condition_labels"]
    it = rep["items"]
    st.dataframe([{"a": labels[r["a"]], "b": labels[r["b"]], "items": r["n_items"],
                   "mean hit rate a": _pct(r["mean_a"]), "mean hit rate b": _pct(r["mean_b"]),
                   "a higher": r["a_higher"], "b higher": r["b_higher"], "ties": r["ties"],
                   "Wilcoxon p": _p(r["wilcoxon"]["p"]),
                   "Wilcoxon p (Holm)": _p(r["wilcoxon"].get("p_holm")),
                   "sign test p": _p(r["sign_test_p"])} for r in it["pairwise"]],
                 hide_index=True, width="stretch")
    st.caption(f"Outcome: {it['outcome']}. Items: {it['matching']} (an item is a query "
               "object).")


def flow_panel(rep: dict) -> None:
    """The flow table and the excluded participants with the rule that excluded them."""
    fl = rep["flow"]
    rules = fl["rules"]
    rows = [{"step": "opened the link", "participants": fl["opened"]},
            {"step": "consented" + ("" if fl["consent_recorded"] else
                                    " (= answered: consent not recorded)"),
             "participants": fl["consented"]},
            {"step": "completed", "participants": fl["completed"]},
            {"step": "withdrawn (returned)", "participants": fl["withdrawn"]}]
    rows += [{"step": f"excluded: {k} ({rules[k]})", "participants": v}
             for k, v in fl["excluded"].items() if k != "practice" or v]
    rows.append({"step": "analysed", "participants": fl["analysed"]})
    st.dataframe(rows, hide_index=True, width="stretch")
    out = [x for x in rep["participants"]["list"] if x.get("excluded_by")]
    checks = {c["participant"]: c for c in rep["participants"].get("checks", [])}
    if out:
        with st.expander(f"Excluded participants ({len(out)}) and why"):
            st.dataframe([{"participant": x["participant"], "excluded by": x["excluded_by"],
                           "all rules that apply": ", ".join(x.get("rules", [])),
                           "answered": x["answered"],
                           "false-alarm rate": _pct(checks.get(x["participant"], {}).get(
                               "false_alarm_rate")),
                           "fast answers": _pct(checks.get(x["participant"], {}).get(
                               "fast_share")),
                           "hidden (s)": _num((checks.get(x["participant"], {}).get(
                               "hidden_ms") or 0) / 1000, 1)} for x in out],
                         hide_index=True, width="stretch")
    st.caption("Exclusion rules declared in the study definition before anyone took part "
               "(docs/PROTOCOLS.md §7.2); every figure below uses the analysed "
               f"{fl['analysed']} participants.")


def models_panel(rep: dict) -> None:
    """The mixed models: each condition against the reference, with interval and p."""
    mod = rep.get("model") or {}
    if not mod:
        return
    labels = rep["design"]["condition_labels"]
    rows = []
    mc, ms, mt = mod["correct"], mod["sdt"], mod["time"]
    for c in rep["design"]["conditions"]:
        if c == mod["reference"]:
            continue
        row = {"condition": labels[c], "vs": labels[mod["reference"]]}
        e = mc.get("effects", {}).get(c)
        if e:
            row |= {"odds ratio (correct)": _num(e["odds_ratio"]),
                    "95% CI": _ci(e["odds_ratio_ci"], pct=False), "p": _p(e["p"])}
        e = ms.get("effects", {}).get(c)
        if e:
            row |= {"Δd′": _num(e["dprime"]["estimate"]),
                    "Δd′ 95% CI": _ci(e["dprime"]["ci"], pct=False),
                    "Δd′ p": _p(e["dprime"]["p"]),
                    "Δcriterion": _num(e["criterion"]["estimate"]),
                    "Δcriterion p": _p(e["criterion"]["p"])}
        e = mt.get("effects", {}).get(c)
        if e:
            row |= {"time ratio (hits)": _num(e["ratio"]),
                    "time 95% CI": _ci(e["ratio_ci"], pct=False), "time p": _p(e["p"])}
        rows.append(row)
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
    notes = []
    for m in (mc, ms, mt):
        n = f"n = {m['n']}, {m['participants']} participants, {m['items']} items" \
            if "n" in m else m.get("error", "")
        notes.append(f"`{m['formula']}` ({n})")
    st.caption("Mixed models (docs/PROTOCOLS.md §7.5), crossed random intercepts for "
               "participants and items (query objects): " + "; ".join(notes) + ".")


def design_panel(definition) -> None:
    """What the design shows, per condition, before anyone takes part (the plan)."""
    from bench.study.design import design_warnings, plan

    pl = plan(definition)
    labels = {c: condition_label(c) for c in definition.conditions}
    rows = [{"condition": labels[c], "trials": v["trials"], "catch": v["catch"],
             "positives with a region": _pct(v["positive_region_share"]),
             "catch trials with a region": _pct(v["catch_region_share"]),
             "decoys": v["catch_decoy"]} for c, v in pl["summary"].items()]
    src = pl["catch_sources"]
    with st.expander(f"Design: {definition.n_catch} catch trials ({src['hard']} hard "
                     f"negatives), at least {pl['min_catch_per_condition']} per condition; "
                     f"every query met {pl['meetings_per_query']} time(s)"):
        st.dataframe(rows, hide_index=True, width="stretch")
        st.caption(f"Over one participant per group ({pl['groups']} groups). Practice "
                   f"queries (not in the study): {', '.join(pl['practice_queries']) or 'none'}"
                   ". `python -m bench study plan NAME --json` lists every trial.")
        for w in design_warnings(definition):
            st.warning(w)


@st.cache_data(show_spinner="Simulating studies…", max_entries=8, hash_funcs=HASH_FUNCS)
def _power(data_dir: Path, name: str, measure: str, effect: float, sims: int) -> dict:
    from bench.study.power import power

    return power(_store(data_dir, name).definition, measure=measure, effect=effect,
                 n_sims=sims)


def power_panel(data_dir: Path, name: str, n_conditions: int) -> None:
    """How many participants the design needs for an effect (simulated, §7.5)."""
    if n_conditions < 2:
        return
    with st.expander("Power: participants needed"):
        a, b, c = st.columns(3)
        measure = a.selectbox("Effect on", ["hit_rate", "dprime"], key="pw_measure",
                              format_func={"hit_rate": "hit rate", "dprime": "d′"}.get)
        effect = b.number_input("Difference sought", 0.01, 3.0,
                                0.10 if measure == "hit_rate" else 0.5, step=0.05,
                                key=f"pw_effect_{measure}")
        sims = c.number_input("Simulations per size", 5, 200, 20, step=5, key="pw_sims")
        if st.button("Estimate", key="pw_go", icon=":material/calculate:"):
            try:
                st.session_state["_pw"] = _power(data_dir, name, measure, float(effect),
                                                 int(sims))
            except ValueError as e:
                st.session_state["_pw"] = {"error": str(e)}
        pw = st.session_state.get("_pw")
        if pw:
            if pw.get("error"):
                st.error(pw["error"])
                return
            need = pw["needed"]
            st.markdown(f"**{need if need else 'More than ' + str(pw['grid'][-1]['participants'])}"
                        f"** participants for {pw['target']:.0%} power "
                        f"({pw['measure']} +{pw['effect']:g} in {pw['condition']} against "
                        f"{pw['reference']}, alpha {pw['alpha']}).")
            st.dataframe([{"participants": r["participants"], "power": _pct(r["power"]),
                           "95% CI": _ci(r["ci"])} for r in pw["grid"]],
                         hide_index=True, width="stretch")
            a_ = pw["assumptions"]
            st.caption(f"Assumed: hit rate {a_['hit_rate']:.2f}, false-alarm rate "
                       f"{a_['false_alarm_rate']:.2f}, participant sd "
                       f"{a_['sd_participant']:.2f}, item sd {a_['sd_item']:.2f} "
                       f"({a_['source']}); {pw['n_sims']} simulated studies per size, each "
                       "analysed with the report's model (docs/PROTOCOLS.md §7.5).")


def human_vs_machine(rep: dict) -> None:
    hm = rep["human_vs_machine"]
    ov = hm["overall"]
    who = ("participants without annotation" if hm["human_condition"] == NONE
           else "participants, all conditions")
    st.markdown(f"On the study's {ov['n_pairs']} positive pairs ({ov['n_pairs_answered']} "
                f"answered): hit rate of {who} **{_pct(ov['human_hit_rate'])}** (mean over "
                f"pairs {_pct(ov['human_mean_pair_hit_rate'])}). Success: {hm['success']}.")
    rows = [{"method": m, "success (click: centroid in region)": _pct(
                 v.get("success_rate_click")),
             "machine vs human, pooled (odds ratio, click)": _num(
                 (v.get("pooled", {}).get("click", {}).get("machine_vs_human") or {}).get(
                     "odds_ratio")),
             "pooled p": _p((v.get("pooled", {}).get("click", {}).get("machine_vs_human")
                             or {}).get("p")),
             "success (seg IoU > 0.5)": _pct(v["success_rate"]),
             "success (bbox IoU > 0.5)": _pct(v["success_rate_bbox"]),
             "mean IoU seg": _num(v["mean_iou_seg"], 3),
             "mean IoU bbox": _num(v["mean_iou_bbox"], 3),
             "pairs tested": v["test"]["n_pairs"], "both": v["test"]["both"],
             "human only": v["test"]["human_only"],
             "machine only": v["test"]["machine_only"], "neither": v["test"]["neither"],
             "ties left out": v["test"]["ties_excluded"],
             "exact test p": _p(v["test"]["p_exact"])} for m, v in ov["methods"].items()]
    st.dataframe(rows, hide_index=True, width="stretch")
    ppp, need = ov.get("participants_per_pair"), ov.get("per_pair_test_needs")
    if ppp and need:
        st.caption(f"Answers per pair in this condition: median {_num(ppp['median'], 0)} "
                   f"(min {ppp['min']}, max {ppp['max']}); a test per pair would need at "
                   f"least {need['answers_per_pair']}, about {need['participants']} "
                   "participants. The pooled model compares over all pairs at once.")
    with st.expander("Per pair"):
        st.dataframe([{"trial": r["trial"], "difficulty": r["difficulty"], "answers": r["n"],
                       "human hit rate": _pct(r["hit_rate"]),
                       **{f"{m} IoU seg": _num(v["iou_seg"], 3)
                          for m, v in r["machine"].items()}} for r in hm["pairs"]],
                     hide_index=True, width="stretch")


def dashboard(data_dir: Path) -> None:
    names = list_studies(data_dir)
    if not names:
        st.info(f"No study in `{data_dir}` yet: create one under **New study**.")
        return
    name = widgets.select("Study", names, "study", help=f"The studies in `{data_dir}`.")
    try:
        res = analysis(data_dir, name)
    except BenchError as e:
        st.error(str(e), icon=":material/error:")
        return
    rep = res["report"]
    d = rep["design"]
    conds = ", ".join(d["condition_labels"][c] for c in d["conditions"])
    st.caption(f"Dataset {d['dataset']} ({d['source']}) · conditions: {conds} · "
               f"{d['n_trials']} trials per participant ({d['n_catch']} catch) + "
               f"{d['n_practice']} practice · {d['order']} order · {len(d['square'])} "
               f"groups · seed {d['seed']} · created {d['created']}")
    if d["source"] == "embedded demo":
        st.caption(":material/science: Demo data: synthetic images; a study on them only "
                   "tries the procedure out.")
    try:
        store = _store(data_dir, name)
        from bench.study.web.pictures import image_file

        if image_file(store.definition, store.definition.trials[0].image) is None:
            st.warning("The images of this study's dataset are not found on this server: "
                       "participants would see an error instead of the photos.")
    except (BenchError, IndexError):
        pass
    store = _store(data_dir, name)
    design_panel(store.definition)
    power_panel(data_dir, name, len(store.definition.conditions))
    if store.definition.platform == "none":
        links(store, rep, store.active_sessions())
    else:
        platform_link(store)
    st.button("Refresh", icon=":material/refresh:", key="study_refresh")
    live(data_dir, name)
    st.subheader("Flow of participants", help="docs/PROTOCOLS.md §7.5")
    flow_panel(rep)

    st.subheader("Analysis", help="docs/PROTOCOLS.md §7.5. Counted: the first answer of "
                 "each participant to each trial.")
    if not rep["n_answers"]:
        st.info("No answers yet.")
        return
    st.markdown(f"**Mixed models** (primary; {rep.get('n_participants', 0)} participants)")
    models_panel(rep)
    st.markdown(f"**Per condition** ({rep.get('n_participants', 0)} participants, "
                f"{rep['n_answers']} answers)")
    st.dataframe(condition_table(rep), hide_index=True, width="stretch")
    st.caption("Accuracy = (hits + correct rejections) / answers; intervals: Clopper-Pearson "
               "exact (rates) and percentile bootstrap, 9,999 resamples (times). d′ with the "
               "log-linear correction. Times: browser time from both images on screen to the "
               "answer, positive trials without a flag (a hidden tab flags a trial); the "
               "server's time (longer: it includes transfer and drawing) beside it.")
    if deferred.charts_now():
        st.plotly_chart(figure(rep), width="stretch", key="study_fig")
    st.subheader("Secondary: paired tests per participant")
    paired_tables(rep)
    st.subheader("Secondary: per item across conditions")
    items_table(rep)
    st.subheader("Human against machine")
    human_vs_machine(rep)
    pr = rep["problems"]
    if pr["skipped_lines"] or pr["repeats"] or pr["refused"]:
        with st.expander(f"Problems: {len(pr['skipped_lines'])} skipped line(s), "
                         f"{len(pr['repeats'])} repeat(s), {len(pr['refused'])} refused "
                         "answer(s)", icon=":material/warning:"):
            for line in pr["skipped_lines"] + [str(r) for r in pr["repeats"]]:
                st.text(line)
            if pr["refused"]:
                st.dataframe(pr["refused"], hide_index=True, width="stretch")
    e1, e2, e3 = st.columns(3)
    e1.download_button("Trials, tidy (CSV)", res["answers_csv"],
                       file_name=f"{name}-trials.csv", mime="text/csv",
                       icon=":material/download:",
                       help="One row per recorded trial (bench.study.export); the codebook "
                            "describes the columns.")
    e1.download_button("Codebook (CSV)", res["codebook_csv"],
                       file_name=f"{name}-trials.codebook.csv", mime="text/csv",
                       icon=":material/download:")
    e2.download_button("Analysis (JSON)", json.dumps(rep, indent=1, allow_nan=False),
                       file_name=f"{name}-report.json", mime="application/json",
                       icon=":material/download:")
    table = condition_table(rep)
    e3.download_button("Conditions table (CSV)", to_csv(table, list(table[0])),
                       file_name=f"{name}-conditions.csv", mime="text/csv",
                       icon=":material/download:")


def experimenter() -> None:
    st.title(TITLE)
    st.caption("Can a person find the query object in a retrieved database image, and does "
               "a region drawn on it (the ground truth, or a method's prediction) help? "
               "Participants click the object, or answer that it is not there on catch "
               "trials; the browser times each answer. Conditions are balanced over "
               "participants by a Latin square (docs/PROTOCOLS.md §7).")
    data_dir = default_data_dir()
    tab_dash, tab_new = st.tabs(["Studies", "New study"])
    with tab_new:
        setup_form(data_dir)
    with tab_dash:
        dashboard(data_dir)


experimenter()

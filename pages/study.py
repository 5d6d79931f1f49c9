"""User study: can a person find the query object in a retrieved image, with and without
the pixel-level annotation drawn on it? (after the PROxford / PRParis paper, ICCV 2023)

Thin page over :mod:`bench.study` (design, storage, scoring, analysis) and
:mod:`bench.render` / :mod:`bench.thumbs` (pictures). Run mode shows one trial at a time
and appends each answer to the study's JSON Lines file at once; Results mode analyses
that file.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from bench import render, thumbs
from bench import study as S
from bench.demo import default_demo_dir
from bench.errors import BenchError
from bench.workspace import DatasetFiles
from ui import context, routing

routing.ensure_routed()

# clicks on the image when the optional component is installed (BENCH_STUDY_BUTTONS=1
# forces the two-button flow, e.g. for tests)
HAS_CLICKS = (importlib.util.find_spec("streamlit_image_coordinates") is not None
              and os.environ.get("BENCH_STUDY_BUTTONS") != "1")
SEND_PX = 1024  # longer side of the pictures as sent to the browser
VIEW_H = 420  # height of both pictures on the page (CSS pixels; narrower columns shrink them)

# ---------------------------------------------------------------- data


def _files(ds: DatasetFiles, *, synthetic: bool, label: str) -> dict:
    return {"label": label, "synthetic": synthetic, "gnd": ds.gnd,
            "pair_labels": ds.pair_labels, "labels_root": ds.labels_root,
            "images": ds.images,
            "methods": {name: mf.matches for name, mf in ds.methods.items() if mf.matches}}


def _data_source() -> dict | None:
    """The dataset chosen in the app's sidebar (``ui.context.ctx()``). ``None`` (after
    saying why) when the chosen source has no pixel labels to run a study on."""
    c = context.ctx()
    if c.dataset is None:
        if c.source == "gpr":
            st.info("A user study needs a Revisited-format dataset with pixel labels "
                    "(PROxford / PRParis layout); the GPR1200 source has none. Choose "
                    "another source in the sidebar.")
        else:
            st.error(c.error or "No dataset found.", icon=":material/error:")
        return None
    if c.dataset.pair_labels is None:
        st.warning(f"Dataset {c.dataset.name} has no pixel labels "
                   f"({c.dataset.short}_pair2labelpath.npy): a study needs the ground-truth "
                   "regions to score clicks and to draw them.")
        return None
    return _files(c.dataset, synthetic=c.synthetic,
                  label=f"{c.dataset.name} ({'synthetic demo' if c.synthetic else c.root})")


def _mtime(p) -> float:
    try:
        return Path(p).stat().st_mtime
    except (OSError, TypeError):
        return 0.0


@st.cache_data(show_spinner="Reading ground truth and labels...", max_entries=8)
def _load(gnd: str, pair_labels: str, labels_root: str, images: str | None,
          matches: str | None, stamp: tuple) -> S.StudyData:
    return S.load_study_data(gnd, pair_labels=pair_labels, labels_root=labels_root,
                             images=images, matches=matches)


def load_data(src: dict, method: str | None) -> S.StudyData:
    matches = str(src["methods"][method]) if method else None
    files = (src["gnd"], src["pair_labels"], matches)
    return _load(str(src["gnd"]), str(src["pair_labels"]), str(src["labels_root"]),
                 str(src["images"]) if src["images"] else None, matches,
                 tuple(_mtime(f) for f in files))


@st.cache_data(max_entries=64, show_spinner=False)
def _query_picture(path: str | None, name: str, box: tuple | None, mtime: float
                   ) -> tuple[bytes, int, int]:
    """JPEG of the query image with its box, and its width and height."""
    img = thumbs.open_image(path)
    img = (render.placeholder(name, size=320, note="image not found") if img is None
           else render.fit(render.draw_box(img, box), SEND_PX))
    return render.jpeg_bytes(img, quality=90), img.width, img.height


@st.cache_data(max_entries=64, show_spinner=False)
def _db_picture(path: str | None, name: str, polys: tuple, source: str, mtime: float
                ) -> tuple[bytes, int, int, float]:
    """JPEG of the database image (the annotation drawn when *polys* is non-empty: the
    ground truth filled, or the method's polygon outlined, by :func:`render.overlay`),
    its width and height, and the factor from its pixels to the original image's."""
    img = thumbs.open_image(path)
    if img is None:
        tile = render.placeholder(name, size=320, note="image not found")
        return render.jpeg_bytes(tile), tile.width, tile.height, 1.0
    shapes = [np.asarray(p, dtype=np.float64) for p in polys]
    if shapes and source == "ground_truth":
        img = render.overlay(img, shapes, None)
    elif shapes:
        img = render.overlay(img, [], shapes[0])
    shown = render.fit(img, SEND_PX)
    return render.jpeg_bytes(shown, quality=90), shown.width, shown.height, img.width / shown.width


def _view_width(w: int, h: int) -> int:
    """Display width that gives the picture VIEW_H pixels of height (both pictures of a
    trial get the same height and fit on the screen without scrolling)."""
    return max(1, round(VIEW_H * w / max(h, 1)))


# ---------------------------------------------------------------- page header

def _kept(key: str, default: str) -> dict:
    """Widget arguments that keep *key*'s value when the user visits another page and
    comes back (Streamlit forgets the state of widgets that were not shown), so answers
    never go to a study other than the one the experimenter chose."""
    store = f"_keep_{key}"
    st.session_state.setdefault(store, default)
    st.session_state[key] = st.session_state[store]

    def changed() -> None:
        st.session_state[store] = st.session_state[key]

    return {"key": key, "on_change": changed}


# while a participant works, the page shows little more than the trial
running = bool(st.session_state.get("study_run")) and st.session_state.get("study_mode",
                                                                           "Run") == "Run"
if not running:
    st.title("User study: do pixel-level results help?")
    st.caption("Can a person find the query object in a retrieved database image faster "
               "and more reliably when the region is drawn on it? Each participant sees half "
               "of the pairs with the annotation and half without; another participant sees "
               "the same pairs the other way round (after the user study of the PROxford / "
               "PRParis paper, ICCV 2023).")

try:
    src = _data_source()
except BenchError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
if src is None:
    st.stop()
if src["synthetic"] and running:
    st.caption(":material/science: Synthetic demo data: this only tries the procedure out.")
elif src["synthetic"]:
    st.info("The data are the **embedded demo: synthetic images** made from scikit-image's "
            "bundled photographs. A study on them only tries the procedure out; its results "
            "say nothing about any real benchmark or method.", icon=":material/science:")

settings = (st.expander("Study settings", icon=":material/settings:") if running
            else st.container())
with settings:
    c1, c2, c3 = st.columns([3, 2, 2])
    study_dir = c1.text_input("Study folder", help="Study files are kept here as "
                              "<study name>.jsonl.",
                              **_kept("study_dir", str(default_demo_dir().parent / "studies")))
    study_name = c2.text_input("Study name", help="Letters, digits, '.', '_' and '-'. One "
                               "file per study.", **_kept("study_name", "study-1"))
    mode = c3.radio("Mode", ["Run", "Results"], key="study_mode", horizontal=True)
    st.caption(f"Data: {src['label']}.")

try:
    path = S.study_file(study_dir, study_name)
except ValueError as exc:
    st.error(str(exc))
    st.stop()
try:
    log = S.read_study(path)
except OSError as exc:
    st.error(f"Cannot read the study file {path}: {exc.strerror or exc}. Choose another "
             "study folder.", icon=":material/error:")
    st.stop()
if log.problems:
    with st.expander(f"{len(log.problems)} line(s) of {path.name} skipped", expanded=False,
                     icon=":material/warning:"):
        st.code("\n".join(str(p) for p in log.problems[:200]), language=None)


# ---------------------------------------------------------------- run mode

def _design_form(log: S.StudyLog) -> tuple[S.StudyDesign | None, S.StudyData | None]:
    """The study's design (stored, or from the widgets for a new study) and its data."""
    gnd_name = Path(src["gnd"]).stem.removeprefix("gnd_")
    if log.design is not None:
        d = log.design
        if d.dataset != gnd_name:
            st.error(f"Study {study_name!r} was made on dataset {d.dataset!r}, but the data "
                     f"source is {gnd_name!r}. Choose that dataset or another study name.")
            return None, None
        if d.source == "method" and d.method not in src["methods"]:
            st.error(f"Study {study_name!r} shows results of method {d.method!r}, which this "
                     "data source does not have.")
            return None, None
        what = "ground truth" if d.source == "ground_truth" else f"method {d.method}"
        (settings if running else st).caption(
            f"Existing study: {d.n_trials} trials per participant, annotation = {what}, seed "
            f"{d.seed}, created {d.created or '?'}. Its design is fixed; use a new study name "
            "for other settings.")
        return d, load_data(src, d.method if d.source == "method" else None)

    options = ["ground_truth", *sorted(src["methods"])]
    a1, a2, a3 = st.columns(3)
    choice = a1.selectbox("Annotation shown", options, key="study_source",
                          format_func=lambda o: "ground-truth region" if o == "ground_truth"
                          else f"prediction of {o}",
                          help="What the 'with annotation' condition draws on the image.")
    method = None if choice == "ground_truth" else choice
    require = True
    if method:
        require = st.checkbox("Only pairs the method localised", value=True,
                              key="study_require_pred",
                              help="Off: pairs without a prediction are included and shown "
                                   "without a region in both conditions.")
    data = load_data(src, method)
    n_avail = len(S.available_pairs(data.gnd, data.gt, data.preds, require_prediction=require))
    max_even = n_avail - n_avail % 2
    if max_even < 2:
        st.error(f"Only {n_avail} usable positive pair(s) in {gnd_name}; a study needs 2.")
        return None, None
    n_trials = a2.number_input("Trials per participant", min_value=2, max_value=max_even,
                               value=min(20, max_even), step=2, key="study_n_trials",
                               help=f"Even; {n_avail} positive pairs available. Every pair "
                                    "is shown to two groups, once in each condition.")
    seed = a3.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1,
                           key="study_seed")
    design = S.StudyDesign(study=study_name, dataset=gnd_name,
                           source="method" if method else "ground_truth",
                           n_trials=int(n_trials) - int(n_trials) % 2, seed=int(seed),
                           method=method, require_prediction=require)
    try:
        design = S.freeze_design(design, data)  # the sampled pairs go into the file
    except ValueError as exc:
        st.error(f"Cannot build the trials: {exc}")
        return None, None
    return design, data


def _answer(trial: S.Trial, answer: str, click=None, scale: float = 1.0) -> None:
    """Record an answer to the current trial (ignored if it is not the current one, e.g.
    a double click), appended to the study file at once."""
    run = st.session_state.get("study_run")
    if not run or run.get("current") != trial.trial_id:
        return
    rt = time.monotonic() - run["t0"]
    xy = None
    if click is not None:
        xy = (click["x"] * scale, click["y"] * scale)
    resp = S.make_response(trial, study=run["study"], participant=run["participant"],
                           answer=answer, rt_s=rt, click=xy, gt_shapes=run["gt"])
    try:
        S.append_response(run["path"], resp)
    except OSError as exc:  # not saved: the trial stays, the participant can answer again
        run["error"] = f"Could not save the answer to {run['path']}: {exc}"
        return
    run["current"] = None


def _start(design: S.StudyDesign, participant: str, path: Path) -> None:
    try:
        d = S.ensure_design(path, design)
    except OSError as exc:
        st.session_state.study_start_error = f"Cannot write the study file {path}: {exc}"
        return
    st.session_state.study_run = {"study": d.study, "path": str(path),
                                  "participant": participant.strip(), "current": None,
                                  "t0": 0.0, "gt": []}


def run_mode() -> None:
    run = st.session_state.get("study_run")
    if run and run.get("path") != str(path):
        st.session_state.pop("study_run")
        run = None
    if src["images"] is None or not Path(src["images"]).is_dir():
        st.warning("A study shows the images, and this dataset has no images folder: give "
                   "the folder with the query and database .jpg files in the sidebar "
                   "(Images folder). Results of existing studies are under Results.",
                   icon=":material/image_not_supported:")
        return
    design, data = _design_form(log)
    if design is None or data is None:
        return
    try:
        trials = S.trials_from_design(design, data)
    except ValueError as exc:
        st.error(f"Cannot build the trials: {exc}")
        return

    if not run:
        participant = st.text_input("Participant id", key="study_participant",
                                    placeholder="P1",
                                    help="Number participants P1, P2, P3, ...: odd and even "
                                         "numbers get the two counterbalanced groups.")
        pid = (participant or "").strip()
        if pid:
            left = S.remaining_trials(S.participant_trials(trials, pid, seed=design.seed),
                                      log.responses, pid)
            grp = S.participant_group(pid)
            note = f"Group {grp}. "
            if len(left) < design.n_trials:
                note += f"Already answered {design.n_trials - len(left)} of {design.n_trials}."
            st.caption(note)
            if not left:
                st.success(f"{pid} has completed this study. Enter the next participant's id.")
                return
        with st.expander("Instructions to read to the participant", expanded=True):
            how = ("click on the object in the image on the right" if HAS_CLICKS
                   else "press **Found it** as soon as you have found the object")
            st.markdown(
                "On the left is a query image; the object is inside the blue box. On the "
                "right is another photo. Find the same object in it as quickly as you "
                f"can, then {how}. If you cannot find it, press **Can't find it**. Some "
                "photos have a coloured region drawn on them, some do not.")
        st.button("Start", type="primary", disabled=not pid, on_click=_start,
                  args=(design, pid, path))
        if err := st.session_state.pop("study_start_error", None):
            st.error(err, icon=":material/error:")
        return

    pid = run["participant"]
    mine = S.participant_trials(trials, pid, seed=design.seed)
    left = S.remaining_trials(mine, S.read_study(path).responses, pid)
    n = len(mine)
    if err := run.pop("error", None):
        st.error(err, icon=":material/error:")
    st.progress((n - len(left)) / n, text=f"Participant {pid}: {n - len(left)} of {n} done")
    if not left:
        st.success(f"Done, thank you! All {n} answers of {pid} are saved in {path}.")
        if st.button("Next participant", type="primary"):
            st.session_state.pop("study_run", None)
            st.session_state.pop("study_participant", None)
            st.rerun()
        return

    trial = left[0]
    gnd = data.gnd
    qpath = thumbs.resolve_image(data.images, trial.query)
    dpath = thumbs.resolve_image(data.images, trial.image)
    polys = tuple(tuple(map(tuple, p.tolist()))
                  for p in S.annotation_for(trial, data.gt, data.preds))
    qimg, qw, qh = _query_picture(str(qpath) if qpath else None, trial.query,
                                  gnd.bbx[trial.q], _mtime(qpath))
    dimg, dw, dh, scale = _db_picture(str(dpath) if dpath else None, trial.image, polys,
                                      trial.source, _mtime(dpath))
    if run.get("current") != trial.trial_id:  # first display of this trial: start the clock
        run["current"] = trial.trial_id
        run["gt"] = data.gt.get(trial.pair, [])
        run["t0"] = time.monotonic()

    # the answer buttons above the pictures, so they never need scrolling to
    b1, b2, _ = st.columns([1, 1, 3])
    if not HAS_CLICKS:
        b1.button("Found it", type="primary", key=f"found-{trial.trial_id}",
                  on_click=_answer, args=(trial, "found"), width="stretch")
    b2.button("Can't find it", key=f"notfound-{trial.trial_id}", on_click=_answer,
              args=(trial, "not found"), width="stretch")
    qv, dv = _view_width(qw, qh), _view_width(dw, dh)
    left_col, right_col = st.columns([qv, dv])
    left_col.image(qimg, caption="Query: the object in the blue box", width=qv)
    with right_col:
        if HAS_CLICKS:
            from streamlit_image_coordinates import streamlit_image_coordinates

            value = streamlit_image_coordinates(Image.open(io.BytesIO(dimg)), width=dv,
                                                key=f"click-{pid}-{trial.trial_id}",
                                                cursor="crosshair")
            if value and value.get("width"):
                _answer(trial, "found", value, scale * dw / value["width"])
                st.rerun()
            st.caption("Click on the object where you see it.")
        else:
            st.image(dimg, width=dv)
    with st.expander("Stop", expanded=False):
        st.caption("Answers so far are saved; the same participant id resumes where it "
                   "stopped.")
        if st.button("Stop this session"):
            st.session_state.pop("study_run", None)
            st.rerun()


# ---------------------------------------------------------------- results mode

def _fmt(v, pct=False) -> str:
    if v is None:
        return "n/a"
    return f"{v:.1%}" if pct else f"{v:.2f}"


def results_mode() -> None:
    if not log.responses:
        st.info(f"No responses in {path} yet. Run the study first (mode Run).")
        return
    a = S.analyse(log.responses, seed=0)
    d = log.design
    if d is not None:
        what = "ground-truth region" if d.source == "ground_truth" else f"prediction of {d.method}"
        st.caption(f"Study {d.study}: dataset {d.dataset}, annotation = {what}, "
                   f"{d.n_trials} trials per participant, seed {d.seed}.")
    groups = [S.participant_group(p["participant"]) for p in a["participants"]]
    st.caption(f"{a['n_responses']} responses from {a['n_participants']} participant(s) "
               f"(group 0: {groups.count(0)}, group 1: {groups.count(1)}).")
    w, wo = a["conditions"]["with"], a["conditions"]["without"]

    def delta(key, pct):
        if w[key] is None or wo[key] is None:
            return None
        v = w[key] - wo[key]
        return f"{v:+.1%} vs without" if pct else f"{v:+.2f} s vs without"

    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Accuracy, with", _fmt(w["accuracy"], True),
              delta=delta("accuracy", True))
    m2.metric("Accuracy, without", _fmt(wo["accuracy"], True))
    m3.metric("Median time, with", f"{_fmt(w['rt_median'])} s",
              delta=delta("rt_median", False), delta_color="inverse")
    m4.metric("Median time, without", f"{_fmt(wo['rt_median'])} s")
    if a["n_repeats_ignored"]:
        st.caption(f"{a['n_repeats_ignored']} repeated answer(s) to the same trial by the same "
                   "participant are kept in the file but left out (the first answer counts).")

    st.plotly_chart(S.study_figure(a), width="stretch")
    st.dataframe(S.summary_rows(a), width="stretch", hide_index=True,
                 column_config={k: st.column_config.NumberColumn(format="%.3f")
                                for k in ("accuracy", "accuracy CI low", "accuracy CI high",
                                          "mean time (s)", "mean time CI low",
                                          "mean time CI high", "median time (s)",
                                          "median time CI low", "median time CI high")})
    st.caption("Correct = the click lies on the ground-truth region (when the participant "
               "clicked), else the answer 'found' (every pair is a positive). Intervals: 95% "
               "percentile bootstrap over responses (2,000 resamples, seed 0).")

    pp, pr = a["paired_participants"], a["paired_pairs"]
    st.subheader("Paired comparisons")
    st.markdown(
        f"- **Per participant** ({pp['n']} with answers in both conditions): accuracy "
        f"higher with the annotation for {pp['accuracy']['better_with']}, lower for "
        f"{pp['accuracy']['better_without']}, equal for {pp['accuracy']['ties']}; exact "
        f"sign test p = {pp['accuracy']['p_sign']:.3g}. Median time shorter with the "
        f"annotation for {pp['time']['faster_with']}, longer for "
        f"{pp['time']['faster_without']}; sign test p = {pp['time']['p_sign']:.3g} "
        f"(median difference {_fmt(pp['time']['median_diff'])} s).\n"
        f"- **Per pair** ({pr['n']} pairs answered in both conditions): correct only with "
        f"the annotation {pr['only_with_correct']}, only without "
        f"{pr['only_without_correct']}, same {pr['ties']}; exact McNemar p = "
        f"{pr['p_mcnemar']:.3g}.")
    with st.expander("Per participant and per difficulty"):
        st.dataframe(a["participants"], width="stretch", hide_index=True)
        st.dataframe([{"difficulty": k, "condition": S.CONDITION_LABELS[c], **v}
                      for k, by in a["by_difficulty"].items() for c, v in by.items()],
                     width="stretch", hide_index=True)

    d1, d2, d3 = st.columns(3)
    d1.download_button("Responses (CSV)", S.responses_csv(log.responses),
                       file_name=f"{study_name}-responses.csv", mime="text/csv",
                       icon=":material/download:")
    d2.download_button("Analysis (JSON)", json.dumps(a, indent=2, allow_nan=False),
                       file_name=f"{study_name}-analysis.json", mime="application/json",
                       icon=":material/download:")
    d3.download_button("Raw study file (JSONL)", path.read_bytes(),
                       file_name=path.name, mime="application/x-ndjson",
                       icon=":material/download:")


if mode == "Run":
    run_mode()
else:
    results_mode()

"""How a detect dataset is split: groups of videos that must stay together (same footage, a swap and its
source, and with split_by="identity" the same person), held-out identities, and the deterministic
assignment of groups to train / val / test. Used by `detect.dataset.build_dataset`; the videos are its
`VideoEntry` records, `docs` the per-video parts it wrote (samples, track embeddings, content fingerprint).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Sequence, Tuple

import numpy as np

from swap.errors import InputError

if TYPE_CHECKING:
    from .dataset import DatasetSettings, VideoEntry


def assign_splits(groups: Sequence[str], fractions: Tuple[float, float, float] = (0.7, 0.15, 0.15),
                  seed: int = 0) -> Dict[str, str]:
    """Deterministic split of groups: order by a hash of (seed, group), then the first share goes to
    test, the next to val, the rest to train. With 3+ groups val and test get at least one each
    (when their fraction is > 0)."""
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise InputError(f"split fractions must be three non-negative numbers, got {fractions}")
    tr, va, te = (f / sum(fractions) for f in fractions)
    uniq = sorted(set(groups), key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    n = len(uniq)
    n_test = int(round(n * te))
    n_val = int(round(n * va))
    if n >= 3:
        n_test, n_val = max(n_test, 1 if te > 0 else 0), max(n_val, 1 if va > 0 else 0)
    elif n == 2 and te > 0:
        n_test, n_val = 1, 0
    elif n == 2 and va > 0:
        n_test, n_val = 0, 1
    else:
        n_test = n_val = 0
    if tr == 0:                 # no train share: every group goes to val or test, as asked
        if va == 0:
            n_test = n
        elif te == 0:
            n_test = 0
        else:
            n_test = min(n - 1, max(1, int(round(n * te)))) if n >= 2 else int(te >= va)
        n_val = n - n_test
    while n_test + n_val >= n and n > 1 and tr > 0:
        if n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    out = {}
    for i, g in enumerate(uniq):
        out[g] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


def references(hold_out: Sequence[str], rows: dict) -> Dict[str, np.ndarray]:
    """Embeddings of the held-out identities and of the identities named in the sources CSV."""
    from .identity import reference_embedding

    refs: Dict[str, np.ndarray] = {}
    for spec in list(hold_out) + [r.identity for r in rows.values() if r.identity]:
        if spec not in refs:
            refs[spec] = reference_embedding(spec)[1]
    return refs


def main_embedding(doc: dict) -> List[np.ndarray]:
    """The identity embeddings of a video's face tracks (those kept), longest track first."""
    kept = {int(x["track"]) for x in doc.get("samples", [])}
    tr = [t for k, t in (doc.get("tracks") or {}).items() if int(k) in kept and t.get("embedding")]
    tr.sort(key=lambda t: -int(t.get("frames", 0)))
    return [np.asarray(t["embedding"], np.float32) for t in tr]


def groups(used: List[VideoEntry], plans, docs: Dict[str, dict], rows: dict, s: DatasetSettings,
            summary) -> Dict[str, str]:
    """{video id: group id}: same content (fingerprint), the source named by labels / C2PA / the CSV; with
    split_by="identity" also the same person (main face tracks within dlib's 0.6)."""
    from .grouping import c2pa_parent_title, group_by_content
    from .identity import SAME_PERSON

    by_path = {v.path: v.id for v in used}
    by_name: Dict[str, List[str]] = {}
    for v in used:
        by_name.setdefault(Path(v.path).name, []).append(v.id)
    links = []
    hint: Dict[str, List[str]] = {}             # a source outside the inputs: its swaps still go together
    ids = {v.id for v in used}
    for v, labels in plans:
        if v.id not in ids or v.label != 1:
            continue
        src, why = None, ""
        row = rows.get(v.path)
        if row is not None and row.source:
            src, why = row.source, "sources CSV"
        elif labels is not None and labels.source:
            src, why = v.group, "labels source"
        if src is not None:
            if src in by_path:
                links.append((v.id, by_path[src], why))
            hint.setdefault(src, []).append(v.id)
        elif labels is None:
            title = c2pa_parent_title(Path(v.path))
            if title and len(by_name.get(title, [])) == 1:
                links.append((v.id, by_name[title][0], f"C2PA ingredient {title}"))
    for members in hint.values():
        links += [(members[0], m, "same recorded source") for m in members[1:]]
    fps = {i: docs[i].get("content") or {} for i in ids}
    group, used_links = group_by_content(sorted(ids), fps, links)
    names = {v.id: Path(v.path).name for v in used}
    for ln in used_links:
        for a, b in ((ln.a, ln.b), (ln.b, ln.a)):
            v = next(x for x in used if x.id == a)
            v.grouped = v.grouped or f"with {names[b]}: {ln.why}"
    copies = [ln for ln in used_links if ln.why.startswith("same content")
              and next(x for x in used if x.id == ln.a).label == next(x for x in used if x.id == ln.b).label]
    for ln in copies:
        summary.notes.append(f"{names[ln.a]} and {names[ln.b]} show the same footage: kept in one split")
    if s.split_by == "identity":
        from .grouping import _UnionFind

        uf = _UnionFind(set(group.values()))
        embs = [(group[v.id], e) for v in used for e in main_embedding(docs[v.id])[:2]]
        for i in range(len(embs)):
            for j in range(i + 1, len(embs)):
                if embs[i][0] != embs[j][0] and float(np.linalg.norm(embs[i][1] - embs[j][1])) < SAME_PERSON:
                    uf.union(embs[i][0], embs[j][0])
        group = {k: uf.find(g) for k, g in group.items()}
    # a group is named by the smallest of its members' own keys (a real clip's path, a swap's recorded source),
    # so groups that nothing merged keep the names, and the seeds, they always had
    own = {v.id: v.group for v in used}
    name: Dict[str, str] = {}
    for k, g in group.items():
        name[g] = min(name.get(g, own[k]), own[k])
    group = {k: name[g] for k, g in group.items()}
    n = len(set(group.values()))
    if not s.test_only and n < 3:
        summary.warnings.append(f"only {n} group(s) of videos ({'people' if s.split_by == 'identity' else 'footage'}):"
                                " val and test cannot both be filled")
    return group


def assign(used: List[VideoEntry], group: Dict[str, str], docs: Dict[str, dict], refs: Dict[str, np.ndarray],
            s: DatasetSettings, summary) -> None:
    """Splits: everything in test (test_only); the groups of held-out identities in test; the other groups
    by `s.split` fractions. Warns when val or test share a person with train."""
    from .identity import SAME_PERSON, nearest

    held: Dict[str, str] = {}
    for spec in s.hold_out:
        hit = False
        for v in used:
            embs = main_embedding(docs[v.id])
            if any(nearest(e, {spec: refs[spec]})[1] < SAME_PERSON for e in embs):
                held.setdefault(group[v.id], spec)
                v.identity = v.identity or Path(spec).stem
                hit = True
        if not hit:
            raise InputError(f"--hold-out-identity {spec}: no video shows this person (no face track within "
                             f"{SAME_PERSON} of it)")
    rest = sorted({g for g in group.values() if g not in held})
    fractions = s.split
    for spec in s.hold_out:
        vids = [Path(v.path).name for v in used if held.get(group[v.id]) == spec]
        summary.notes.append(f"held out ({spec}): {len(vids)} video(s) in test with everything grouped with them: "
                             f"{', '.join(vids[:6])}{', ...' if len(vids) > 6 else ''}")
    split = {g: "test" for g in group.values()} if s.test_only else assign_splits(rest, fractions, s.seed) if rest else {}
    for v in used:
        g = group[v.id]
        v.split = "test" if g in held else split[g]
        if g in held:
            v.held_out = held[g]
        v.group = g
    if s.test_only:
        return
    train = [e for v in used if v.split == "train" for e in main_embedding(docs[v.id])[:2]]
    for sp in ("val", "test"):
        shared = sorted({Path(v.path).name for v in used if v.split == sp for e in main_embedding(docs[v.id])[:1]
                         if any(float(np.linalg.norm(e - t)) < SAME_PERSON for t in train)})
        if shared:
            summary.warnings.append(f"{len(shared)} {sp} video(s) show people also in train ({', '.join(shared[:3])}"
                                    f"{', ...' if len(shared) > 3 else ''}): {sp} AUC there measures known faces, "
                                    "not generalisation (use --split-by identity or --hold-out-identity)")



"""The local MTEB suite (``st-bertapprox mteb --suite local``) on the teacher, its peers and our students: a
leaderboard-style table, and the teacher's scores on the official-protocol tasks next to its published ones.

    python bench/mteb_suite.py [--threads 1] [--model NAME=FOLDER ...]   # writes bench/results/mteb.{md,json}
    python bench/mteb_suite.py --small                                     # CI: a static model, 100 rows per task

Default models: the teacher, model2vec and model2vec + tokenlearn (``bench/frontier.py``'s peers, in ``runs/bench``),
the DeepSets student, the contextual student and the tiny transformer (``runs/student``, ``runs/contextual-noentry``,
``runs/tiny``; a run folder's ``student-folded`` if it has one, else its ``student``). Results in MTEB's layout go to
``--output`` (default ``runs/mteb``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import mteb
from common import Report, bench_parser, markdown_table, set_threads

from st_bertapprox.config import DEFAULT_TEACHER
from st_bertapprox.data.shared import teacher_path
from st_bertapprox.evaluation.mteb.run import leaderboard, load_scores, run_mteb, task_types
from st_bertapprox.evaluation.mteb.tasks import LOCAL_SUITE
from st_bertapprox.persistence.loading import load_model

MODELS = {
    DEFAULT_TEACHER: "teacher",
    "model2vec distill": "runs/bench/model2vec",
    "model2vec + tokenlearn": "runs/bench/model2vec-tokenlearn-50536",
    "DeepSets student": "runs/student",
    "contextual student": "runs/contextual-noentry",
    "tiny transformer 2x128": "runs/tiny",
}
# The teacher's published MTEB scores (main score; mteb 1.12.75, model revision 8b3219a9, the protocol our local
# task keeps), from github.com/embeddings-benchmark/results at commit f4cc6c8b365a3c779dbc708d6affe0b0355b2ddf:
# results/sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a/<Task>.json
PUBLISHED_SOURCE = (
    "embeddings-benchmark/results@f4cc6c8b, results/sentence-transformers__all-MiniLM-L6-v2/"
    "8b3219a92973c328a8e22fadcfa821b5dc75636a/<Task>.json (mteb 1.12.75)"
)
PUBLISHED = {"SciFact": 0.64508, "Banking77Classification": 0.8004220779220779}
TOLERANCE = 0.005  # half a point


def model_folder(path: str) -> str:
    """A model folder: ``teacher``, a run folder (its folded student if any, else its student), or a model folder."""
    if path == "teacher":
        return teacher_path()
    run = Path(path)
    for sub in ("student-folded", "student"):
        if (run / sub / "modules.json").is_file():
            return str(run / sub)
    return path


def is_teacher(path: str) -> bool:
    """Whether ``--model``'s FOLDER is the teacher: ``teacher``, or the teacher's own folder."""
    return Path(model_folder(path)).resolve() == Path(teacher_path()).resolve()


def small_model():
    """CI: a static model on the teacher's tokenizer and input embeddings (a second of encoding per task)."""
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    weights = load_file(f"{teacher_path()}/model.safetensors")
    table = next(v for k, v in weights.items() if k.endswith("word_embeddings.weight"))
    tokenizer = Tokenizer.from_file(f"{teacher_path()}/tokenizer.json")
    return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=table)], device="cpu")


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="NAME=FOLDER (a run folder, a model folder or 'teacher')")
    parser.add_argument("--output", default=None, help="MTEB results folder (default: runs/mteb; --small: a temp one)")
    args = parser.parse_args()
    set_threads(args.threads)
    specs = dict(m.split("=", 1) for m in args.model) if args.model else MODELS
    output = args.output or ("runs/bench-small/mteb" if args.small else "runs/mteb")
    limit = 100 if args.small else None
    rep = Report("mteb", args)
    start, wall = time.perf_counter(), {}
    runs = {"static input embeddings of the teacher": "small"} if args.small else specs
    # the teacher row (checked against its published scores): the model that is the teacher, whatever its name
    teacher_name = next((name for name, path in runs.items() if is_teacher(path)), None)
    for name, path in runs.items():
        began = time.perf_counter()
        model = small_model() if args.small else load_model(model_folder(path), trust_remote_code=False)
        print(f"{name}: {path}", flush=True)
        run_mteb(model, list(LOCAL_SUITE), output, model_name=name, limit=limit, show_progress_bar=False)
        wall[name] = time.perf_counter() - began
        print(f"  {wall[name]:.0f} s", flush=True)
    total = time.perf_counter() - start
    scores = {name: got for name, got in load_scores(output).items() if name in wall}  # mteb's own loader
    scores = {name: scores[name] for name in wall}  # rows in the order run
    types = task_types(list(LOCAL_SUITE))

    times = ", ".join(f"{name} {t:.0f} s" for name, t in wall.items())
    rep.print(
        f"MTEB {mteb.__version__}, local suite (`st-bertapprox mteb MODEL --suite local`), offline on "
        f"the shared data{f', {limit} rows per split (smoke run)' if limit else ''}; main scores x 100. CPU threads: "
        f"{args.threads}, on a machine shared with other jobs (wall times are upper bounds).",
        "",
        leaderboard(scores, types),
        "",
        f"Wall time per model: {times}; all: {total:.0f} s.",
    )
    teacher = scores.get(teacher_name)
    checks = {}
    if teacher is not None:
        rows = []
        for task, published in PUBLISHED.items():
            checks[task] = abs(teacher[task] - published) <= TOLERANCE
            diff = 100 * (teacher[task] - published)
            rows.append([task, f"{100 * teacher[task]:.2f}", f"{100 * published:.2f}", f"{diff:+.2f}"])
        rep.print(
            "",
            "The teacher on the tasks whose data, split and protocol are the official ones, next to its published "
            f"scores ({PUBLISHED_SOURCE}):",
            "",
            *markdown_table(["task", "measured", "published", "difference (points)"], rows),
        )
    rep.save({"scores": scores, "types": types, "wall_s": wall, "total_s": total, "published": PUBLISHED})
    failed = [task for task, ok in checks.items() if not ok]
    if failed:
        sys.exit(f"the teacher is more than {100 * TOLERANCE} points from its published score on {failed}")


if __name__ == "__main__":
    main()

"""RecBole 1.2.1 beside the zoo on one ML-100K split, scored by datasum's metrics.

datasum's random 80/10/10 split of ML-100K (seed `--split-seed`) is written as RecBole benchmark files
(`benchmark_filename: [train, valid, test]`, full ranking, no rating threshold, no filtering). Each RecBole model is
trained with its default settings (RecBole's early stopping on the validation file included) in a subprocess run by
RecBole's own interpreter, which writes the trained model's scores of every (user, item); datasum's `evaluate`
scores them exactly as it scores the zoo (∞-AE protocol: validation from the training history, test from training +
validation, the items a model was shown masked). Each RecBole model is printed beside the zoo model it corresponds
to, on the same split and metrics, with the difference (zoo − RecBole) in points:

    EASE ↔ EASE (λ = RecBole's 250, which must agree exactly, and the zoo's λ grid), MultiVAE ↔ MVAE, BPR ↔ MF (BPR),
    LightGCN ↔ LightGCN, NeuMF ↔ NeuMF.

The zoo models are configured by `--knobs`: `defaults` (the model classes' defaults, which is what "the zoo's
baselines" are) or a scale of `settings.ini` (`smoke`, `cpu`: the `[bench.<scale>]` knobs, here on ML-100K).
RecBole lives in a virtual environment of its own (its pins clash with datasum's); point DATASUM_RECBOLE_PYTHON at
its interpreter. Without it the script says how to make one and exits 0. Every run uses one thread.

    DATASUM_RECBOLE_PYTHON=/path/to/recbole-venv/bin/python python benchmarks/bench_recbole.py
    ... bench_recbole.py --models EASE,MultiVAE --seeds 3     (three seeds of each model; the mean and spread)
    ... bench_recbole.py --keep /tmp/recbole-runs             (RecBole's scores kept: a rerun trains the zoo only)
    ... bench_recbole.py --tiny                               (EASE and BPR with few epochs: that it runs)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV_VAR = "DATASUM_RECBOLE_PYTHON"
HOW_TO = f"""benchmarks/bench_recbole.py: no RecBole interpreter; set {ENV_VAR} to the python of a RecBole venv, made with
    python3 -m venv RECBOLE_VENV
    RECBOLE_VENV/bin/pip install torch==2.13.0 recbole==1.2.1
    RECBOLE_VENV/bin/pip install "setuptools<70" "numpy<2" "pandas<2.3" "scipy<1.14"
then run  {ENV_VAR}=RECBOLE_VENV/bin/python python benchmarks/bench_recbole.py"""
MODELS = ("EASE", "MultiVAE", "BPR", "LightGCN", "NeuMF")
OURS = {"EASE": "EASE", "MultiVAE": "MVAE", "BPR": "MF", "LightGCN": "LightGCN", "NeuMF": "NeuMF"}
METRICS = ("nDCG@10", "HR@10", "nDCG@100")
DATASET = "split"


# ---------------------------------------------------------------- the child: runs under RecBole's interpreter
def child(spec: dict) -> dict:
    "Train one RecBole model on the benchmark files in spec['data'], write its val/test score matrices, return its log."
    import numpy as np
    import scipy.sparse as sp
    import torch
    torch.set_num_threads(1)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.data.interaction import Interaction
    from recbole.utils import get_model, get_trainer, init_seed
    import logging
    if not hasattr(sp.dok_matrix, "_update"):   # RecBole's graph models call a method that scipy 1.13 no longer has
        sp.dok_matrix._update = lambda self, entries: self._dict.update(entries)
    config = {"data_path": spec["data"], "benchmark_filename": ["train", "valid", "test"],
              "load_col": {"inter": ["user_id", "item_id"]}, "RATING_FIELD": None, "TIME_FIELD": None,
              "eval_args": {"group_by": "user", "order": "RO", "mode": "full"}, "seed": spec["seed"],
              "reproducibility": True, "use_gpu": False, "show_progress": False, "state": "WARNING",
              "checkpoint_dir": str(Path(spec["out"]) / "saved"), "worker": 0} | spec.get("config", {})
    config = Config(model=spec["model"], dataset=DATASET, config_dict=config)
    logging.getLogger().setLevel(logging.WARNING)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    start = time.perf_counter()
    _, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    seconds = time.perf_counter() - start
    own_test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    model = trainer.model.eval()
    # scores of every internal user and item, from a given history (the history matters for EASE and MultiVAE only)
    users_tokens, items_tokens = dataset.field2id_token["user_id"], dataset.field2id_token["item_id"]
    n_users, n_items = len(users_tokens), len(items_tokens)
    def history(parts):
        rows, cols = [], []
        for part in parts:
            for line in (Path(spec["data"]) / DATASET / f"{DATASET}.{part}.inter").read_text().splitlines()[1:]:
                u, i = line.split("\t")
                rows.append(dataset.token2id("user_id", u)); cols.append(dataset.token2id("item_id", i))
        return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    def scores(context):
        out = np.empty((n_users - 1, n_items), np.float32)
        with torch.no_grad():
            for start in range(1, n_users, 256):
                users = torch.arange(start, min(start + 256, n_users))
                if spec["model"] == "MultiVAE":
                    block = model.forward(torch.from_numpy(context[users.numpy()].toarray()))[0]
                elif spec["model"] == "EASE":
                    model.interaction_matrix = context
                    block = model.full_sort_predict(Interaction({"user_id": users}))
                elif "full_sort_predict" in type(model).__dict__:
                    block = model.full_sort_predict(Interaction({"user_id": users}))
                else:   # NeuMF: pairs
                    pairs = Interaction({"user_id": users.repeat_interleave(n_items), "item_id": torch.arange(n_items).repeat(len(users))})
                    block = model.predict(pairs)
                out[start - 1:start - 1 + len(users)] = block.reshape(len(users), n_items).numpy()
        return out
    train, train_val = history(["train"]), history(["train", "valid"])
    for name, context in (("val", train), ("test", train_val)):
        np.save(Path(spec["out"]) / f"{name}.npy", scores(context)[:, 1:])   # column 0 is RecBole's padding item
    np.save(Path(spec["out"]) / "users.npy", np.array([int(t) for t in users_tokens[1:]]))
    np.save(Path(spec["out"]) / "items.npy", np.array([int(t) for t in items_tokens[1:]]))
    epochs = len(getattr(trainer, "train_loss_dict", {}) or {})
    return {"model": spec["model"], "seed": spec["seed"], "fit_seconds": seconds, "epochs": epochs,
            "recbole_valid": {k: float(v) for k, v in dict(best_valid or {}).items()},
            "recbole_test": {k: float(v) for k, v in dict(own_test or {}).items()}}


# ---------------------------------------------------------------- the parent: datasum's side
def export(split, folder: Path) -> None:
    "The split as RecBole atomic benchmark files `split.{train,valid,test}.inter` (tokens: datasum's indices)."
    (folder / DATASET).mkdir(parents=True, exist_ok=True)
    for part, events in (("train", split.train), ("valid", split.val), ("test", split.test)):
        lines = ["user_id:token\titem_id:token"] + [f"{u}\t{i}" for u, i in zip(events.users.tolist(), events.items.tolist())]
        (folder / DATASET / f"{DATASET}.{part}.inter").write_text("\n".join(lines) + "\n")


def run_recbole(python: str, folder: Path, model: str, seed: int, config: dict, keep: Path | None = None,
                split_seed: int = 0) -> tuple[dict, dict]:
    "Train `model` under RecBole's interpreter in a subprocess (one thread); its log and datasum-indexed score tables."
    import numpy as np
    name = f"{model}-seed{seed}-split{split_seed}" + ("-" + "-".join(f"{k}{v}" for k, v in sorted(config.items())) if config else "")
    out = keep / name if keep is not None else Path(tempfile.mkdtemp(prefix=f"recbole-{model}-", dir=folder))
    if not (out / "log.json").exists():
        work = Path(tempfile.mkdtemp(prefix=f"recbole-{model}-", dir=folder))
        spec = {"data": str(folder), "model": model, "seed": seed, "out": str(work), "config": config}
        env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONWARNINGS="ignore")
        done = subprocess.run([python, str(Path(__file__).resolve()), "--child", json.dumps(spec)], capture_output=True, text=True,
                              env=env, cwd=work)  # RecBole writes log/ and log_tensorboard/ into its working directory
        if done.returncode != 0:
            raise RuntimeError(f"RecBole {model} (seed {seed}) failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
        (work / "log.json").write_text(done.stdout.strip().splitlines()[-1])
        shutil.rmtree(work / "saved", ignore_errors=True)
        if keep is not None:   # complete, then moved into place: a run cut short leaves nothing to reuse
            keep.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(out, ignore_errors=True)
            work.rename(out) if work.stat().st_dev == keep.stat().st_dev else shutil.move(str(work), str(out))
        else: out = work
    log = json.loads((out / "log.json").read_text())
    users, items = np.load(out / "users.npy"), np.load(out / "items.npy")
    return log, {part: (np.load(out / f"{part}.npy"), users, items) for part in ("val", "test")}


def table_model(tables: dict, split):
    "A fitted datasum Recommender whose scores are RecBole's (validation or test table, by the context's size)."
    import numpy as np
    from datasum.interface import Recommender

    def dense(part):
        scores, users, items = tables[part]
        scores = scores[:, -len(items):]   # (tables kept by an earlier version held the padding column too)
        out = np.full((split.train.n_users, split.train.n_items), np.nan, np.float32)
        out[np.ix_(users, items)] = scores
        return np.where(np.isnan(out), np.nanmin(out) - 1.0, out)   # items RecBole never saw rank last

    class RecBoleScores(Recommender):
        def fit(self, train, val=None): self._start_fit(train, val); self.val_, self.test_ = dense("val"), dense("test"); return self
        def score(self, users, context=None):
            return (self.val_ if context is None or len(context) == len(split.train) else self.test_)[np.asarray(users)]
    return RecBoleScores().fit(split.train, split.val)


def ours(name: str, knobs: dict, seed: int, split):
    "The zoo's model `name` (datasum.bench.zoo, implicit scenario) fitted on the split; its seconds and epochs."
    from datasum.bench import zoo
    model = zoo("implicit", knobs, seed, threads=1)[name]
    if isinstance(model, list):   # a grid (MF's mf_grid): pick on validation, as the benchmark does
        from datasum.bench import evaluate
        fitted = [m.fit(split.train, split.val) for m in model]
        model = max(fitted, key=lambda m: evaluate(m, split, "implicit", "val")["nDCG@10"])
        return model, float("nan")
    start = time.perf_counter()
    model.fit(split.train, split.val)
    return model, time.perf_counter() - start


def zoo_knobs(which: str) -> dict:
    "The zoo's knobs: the model classes' defaults (EASE with the smoke λ grid) or a scale's [bench.<scale>] section."
    from datasum.config import settings
    if which == "defaults":
        return {"mf": {}, "neumf": {}, "mvae": {}, "lightgcn": {}, "ease_lambdas": settings("bench", "smoke").ease_lambdas}
    return dict(vars(settings("bench", which)))


def mean_spread(values: list[float]) -> str:
    "mean ± half the range, in points."
    import numpy as np
    values = 100 * np.asarray(values)
    return f"{values.mean():6.2f}" + (f" ± {(values.max() - values.min()) / 2:4.2f}" if len(values) > 1 else "       ")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="EASE,MultiVAE,BPR,LightGCN,NeuMF", help="RecBole models, comma-separated")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..n-1 of every model (both sides)")
    parser.add_argument("--split-seed", type=int, default=0, help="the seed of datasum's random split")
    parser.add_argument("--knobs", default="defaults", help="the zoo's configuration: defaults, smoke or cpu")
    parser.add_argument("--tiny", action="store_true", help="EASE and BPR, 5 epochs: that it runs")
    parser.add_argument("--keep", type=Path, default=None,
                        help="a folder where RecBole's score tables are kept and reused (by model, seed and split seed)")
    args = parser.parse_args(argv)
    python = os.environ.get(ENV_VAR)
    if not python or not Path(python).exists():
        print(HOW_TO if not python else f"{ENV_VAR}={python}: no such file\n{HOW_TO}")
        return 0
    models = ["EASE", "BPR"] if args.tiny else [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown: parser.error(f"--models: unknown {', '.join(unknown)}; known: {', '.join(MODELS)}")
    from datasum.bench import evaluate
    from datasum.config import set_threads
    from datasum.data import load, random_split
    from datasum.recommenders import EASE
    set_threads(1)
    split = random_split(load("ml-100k"), seed=args.split_seed)
    knobs = zoo_knobs(args.knobs)
    if args.tiny: knobs |= {"mf": knobs.get("mf", {}) | {"epochs": 5}}
    recbole_config = {"epochs": 5} if args.tiny else {}
    print(f"ML-100K, datasum's random split (seed {args.split_seed}): {len(split.train):,} / {len(split.val):,} / "
          f"{len(split.test):,} events; test metrics by datasum (context train + validation); zoo knobs: {args.knobs}")
    header = f"{'RecBole':>9} {'zoo':>9} {'metric':>9} | {'RecBole':>14} | {'zoo':>14} | zoo − RecBole | fits (s, epochs)"
    print(header + "\n" + "-" * len(header))
    with tempfile.TemporaryDirectory(prefix="bench-recbole-") as tmp:
        folder = Path(tmp)
        export(split, folder)
        for model in models:
            theirs, mine, notes = [], [], []
            for seed in range(args.seeds):
                log, tables = run_recbole(python, folder, model, seed, recbole_config, args.keep, args.split_seed)
                theirs.append(evaluate(table_model(tables, split), split, "implicit", "test"))
                notes.append(f"RecBole {log['fit_seconds']:.0f} s/{log['epochs']}")
                if model == "EASE" and seed == 0:   # the same λ on both sides: the scores and metrics must agree
                    same = EASE(lambdas=[250.0]).fit(split.train, split.val)
                    agree = evaluate(same, split, "implicit", "test")
                    print(f"{'EASE':>9} {'λ=250':>9} {'nDCG@10':>9} | {mean_spread([theirs[0]['nDCG@10']]):>14} | "
                          f"{mean_spread([agree['nDCG@10']]):>14} | {100 * (agree['nDCG@10'] - theirs[0]['nDCG@10']):+13.6f} | "
                          f"max |score difference| {abs(same.score(range(split.train.n_users), split.train) - table_model(tables, split).val_).max():.1e}")
                if model != "EASE" or seed == 0:
                    fitted, seconds = ours(OURS[model], knobs, seed, split)
                    mine.append(evaluate(fitted, split, "implicit", "test"))
                    notes.append(f"zoo {seconds:.0f} s/{len(getattr(fitted, 'epoch_seconds_', []) or []) or '-'}")
            for metric in METRICS:
                a, b = [r[metric] for r in theirs], [r[metric] for r in mine]
                print(f"{model:>9} {OURS[model]:>9} {metric:>9} | {mean_spread(a):>14} | {mean_spread(b):>14} | "
                      f"{100 * (sum(b) / len(b) - sum(a) / len(a)):+13.2f} | " + ("; ".join(notes) if metric == "nDCG@10" else ""), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
    else:
        sys.exit(main())

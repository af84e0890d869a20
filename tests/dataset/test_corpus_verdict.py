"""`tuitrain check`'s verdict on each file of a generated corpus is what `train` does with it.

The corpus (tests/dataset/corpus.py) mixes every supported format whole, cut at random
offsets and with bytes flipped, with the shapes, sizes, wrong extensions and non-regular
files issue 14 found. `check` runs as the user runs it; `train`'s side is the trainer's
own data path (tests/dataset/corpus_train.py). Both run in subprocesses with a time and
an address-space limit, so a hang or a runaway fails the test instead of the machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .bounded import GIB, run_bounded
from .corpus import build

SKIP_LINE = "warning: skipping {} files that `tuitrain check` reports as not usable"


def test_check_and_train_agree_on_every_file_of_a_generated_corpus(tmp_path: Path) -> None:
    corpus = build(tmp_path / "corpus")
    config = tmp_path / "run.toml"
    config.write_text(
        f'[model]\nbase = "{tmp_path / "no-model.safetensors"}"\n'
        f"[data]\nresolution = 64\nbucket_step = 64\n[[data.concepts]]\npath = \"{corpus.folder}\"\n",
        encoding="utf-8",
    )

    check = run_bounded(["-m", "tuitrain", "check", "--json", str(config)], timeout=120, memory=2 * GIB,
                        env={"XDG_CACHE_HOME": str(tmp_path / "check-cache")})
    train = run_bounded(["-m", "tests.dataset.corpus_train", str(config), str(tmp_path / "train-cache")],
                        timeout=180, memory=3 * GIB)

    assert "Traceback" not in check.stderr, check.stderr[-3000:]
    assert train.returncode == 0, train.stderr[-3000:]
    report = json.loads(check.stdout)["data"]
    used_by_check = sorted(Path(image["path"]).name for image in report["images"])
    refused = {Path(problem["path"]).name: problem["reason"] for problem in report["unreadable"]}
    trained = json.loads(train.stdout)

    # check names every file it does not use, and every candidate gets exactly one verdict
    assert sorted(used_by_check + sorted(refused)) == sorted(corpus.candidates)
    assert report["can_train"]
    # ... which is what train does with it: uses the same files, skips the same files,
    assert trained["used"] == used_by_check
    assert trained["skipped"] == sorted(refused)
    # ... loads every file it uses, within the memory limit,
    assert trained["failed"] == {}
    assert trained["peak_mib"] < 1500
    # ... and says once how many it leaves out.
    said = [line for line in train.stderr.splitlines() if line.startswith("warning: skipping")]
    assert len(said) == 1 and said[0].startswith(SKIP_LINE.format(len(refused))), train.stderr[-3000:]
    # The verdicts known in advance are the ones given.
    assert {name: name in used_by_check for name in corpus.expected} == corpus.expected
    print(f"corpus: {len(corpus.candidates)} files ({corpus.generated} cut or flipped), "
          f"{len(used_by_check)} used, {len(refused)} refused", file=sys.stderr)

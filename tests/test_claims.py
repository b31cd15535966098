"""Paper claims and checks: every committed claim says which it is, paper claims name their source,
and checks are never counted as paper claims (in CLAIMS.md or in the README's tally)."""
import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest

from datasum.report import Claim, REFERENCES, markdown_table
from datasum.reproduce import gather_claims, method_claims, tally

ROOT = Path(__file__).resolve().parents[1]
TALLY = re.compile(r"<!-- claims tally: (\w+) -->\n(.*?)\n<!-- end of claims tally -->", re.S)


def write_claims(root: Path, method: str, claims) -> None:
    folder = root / "figures" / "smoke" / method
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "claims.json").write_text(json.dumps({"method": method, "claims": [asdict(c) for c in claims]}))


def test_a_paper_claim_without_a_source_is_refused():
    with pytest.raises(ValueError, match="paper claim: source must be"): Claim("EASE beats MVAE", "yes", "yes", True)
    with pytest.raises(ValueError, match="unknown reference 'easepaper'"):
        Claim("EASE beats MVAE", "yes", "yes", True, source="easepaper: Table 1")
    with pytest.raises(ValueError, match="source must be 'KEY: where'"):
        Claim("EASE beats MVAE", "yes", "yes", True, source="infinite-ae: ")


def test_every_reference_key_is_citable():
    for key, citation in REFERENCES.items():
        assert re.fullmatch(r"[a-z-]+", key) and len(citation) > 20, key


def test_checks_are_never_counted_as_paper_claims(tmp_path):
    write_claims(tmp_path, "toy", [Claim("a paper number", "1", "1", True, source="svp-cf: Table 1"),
                                   Claim("a paper number we miss", "1", "0", False, source="svp-cf: Table 1"),
                                   Claim("cholesky equals inverse", "0", "0", True, kind="check"),
                                   Claim("golden nDCG", "0.39", "0.1", False, kind="check")])
    row = tally("smoke", tmp_path).iloc[0].to_dict()
    assert row == {"notebook": "toy", "hold": 1, "fail": 1, "n/a": 0, "checks": 2, "checks failing": 1}
    text = gather_claims("smoke", tmp_path)
    assert "**Paper claims: 1 hold, 1 fail, 0 cannot be judged at this scale.** Checks: 2, of which 1 fail." in text
    paper, checks = text.split("## Checks")
    assert "cholesky equals inverse" not in paper and "golden nDCG" not in paper
    assert "a paper number" not in checks


def test_an_unlabelled_record_names_its_file(tmp_path):
    folder = tmp_path / "figures" / "smoke" / "old"
    folder.mkdir(parents=True)
    (folder / "claims.json").write_text(json.dumps({"method": "old", "claims": [{"claim": "c", "paper": "p", "ours": "o", "holds": True}]}))
    with pytest.raises(ValueError, match=r"old/claims.json: Claim 'c' is a paper claim"): method_claims("smoke", tmp_path)


def test_committed_claims_are_labelled_and_claims_md_is_their_gathering():
    assert method_claims("cpu", ROOT), "no committed cpu claims"
    assert (ROOT / "figures" / "cpu" / "CLAIMS.md").read_text() == gather_claims("cpu", ROOT)


def test_the_readme_tally_is_the_committed_one():
    found = TALLY.findall((ROOT / "README.md").read_text())
    assert found, "README.md has no '<!-- claims tally: SCALE -->' block"
    for scale, table in found:
        assert table.strip() == markdown_table(tally(scale, ROOT)).strip(), f"README's {scale} tally differs from figures/{scale}: regenerate it"

"""`losslab report`: a self-contained HTML page with embedded plots (losslab.arena.report)."""

import re
from html.parser import HTMLParser

import pytest

from losslab.arena.presets import PRESETS
from losslab.arena.store import RunStore
from losslab.cli import main

TINY_FLAGS = ["--num-samples", "400", "--epochs", "2", "--width", "8", "--quiet"]


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.hrefs, self.stack, self.errors = [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a.get("src", ""))
        if "href" in a:
            self.hrefs.append(a["href"])
        if tag in ("table", "tr", "p", "h1", "h2", "h3", "code", "span", "b"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        tracked = tag in ("table", "tr", "p", "h1", "h2", "h3", "code", "span", "b")
        if tracked and (not self.stack or self.stack.pop() != tag):
            self.errors.append(tag)


@pytest.mark.slow
def test_report_is_self_contained_with_plots_ranking_and_verdict(tmp_path, capsys):
    out = tmp_path / "runs"
    argv = ["arena", "--losses", "ce", "gce", "sce", "--seeds", "2", "--noise-rates", "0.2,0.4",
            "--out", str(out), *TINY_FLAGS]
    assert main(argv) == 0
    # Tiny flags override the minimal preset's settings, so its claim is not recorded ...
    with RunStore(out) as store:
        assert store.get_meta("presets", {}) == {}
        # ... record it unbound (any setting) to render the claim section.
        store.set_meta("presets", {"minimal": [c.to_dict() for c in PRESETS["minimal"].claims]})
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    parser = _Collector()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == []
    # Every image is inline; nothing is fetched from elsewhere.
    assert len(parser.srcs) == 2 + 2 * 2  # acc + ECE, then reliability + curves per rate
    assert all(s.startswith("data:image/png;base64,") for s in parser.srcs)
    assert parser.hrefs == []
    assert not re.search(r"<(script|link)\b", page)
    assert len(list((out / "figures").glob("*.png"))) == 6
    (out / "figures" / "99-stale.png").write_bytes(b"x")
    assert main(["report", str(out)]) == 0
    assert len(list((out / "figures").glob("*.png"))) == 6  # earlier figures are replaced
    assert "Noise 40%: ranking by clean-test accuracy" in page
    assert "direction reproduced for" in page  # the minimal preset's claim is evaluated
    assert PRESETS["minimal"].description in page
    assert "No runs for: focal" not in page  # focal is not a challenger of the claim
    assert "No runs for: nce+rce." in page and "No runs for: aldr-kl." in page


def test_report_without_runs_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no runs.db" in capsys.readouterr().err

"""The report renders in headless Chromium: a screenshot of the page shows the plots (issue 4).

Skipped, with the reason, where Debian's ``chromium`` is not installed
(``apt-get install chromium``)."""

import shutil
import subprocess

import numpy as np
import pytest

from losslab.cli import main

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


# matplotlib's first two default colours (tab:blue, tab:orange): they appear in the report
# only inside its plots, never in its text or tables.
PLOT_COLOURS = np.array([[31, 119, 180], [255, 127, 14]]) / 255


def plot_pixel_share(png_path):
    """Share of the screenshot's pixels in the plots' line and bar colours."""
    from matplotlib.image import imread

    rgb = imread(png_path)[..., :3]
    dist = np.abs(rgb[..., None, :] - PLOT_COLOURS).max(axis=-1).min(axis=-1)
    return float((dist < 0.08).mean()), float(rgb.std())


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    out = tmp_path / "runs"
    argv = ["arena", "--losses", "ce", "gce", "--seeds", "2", "--noise-rates", "0.2,0.4",
            "--out", str(out), "--quiet",
            "--num-samples", "400", "--epochs", "2", "--width", "8"]
    assert main(argv) == 0
    assert main(["report", str(out)]) == 0
    shot = tmp_path / "report.png"
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--window-size=1200,2400", f"--screenshot={shot}", (out / "report.html").as_uri()]
    proc = subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    assert shot.exists(), proc.stderr.decode()[-2000:]
    share, spread = plot_pixel_share(shot)
    assert spread > 0.05  # not a blank page
    # The plots' lines and bars are visible: with unrendered images the share is 0.
    assert share > 0.001, share


def test_plot_pixel_share_tells_plots_from_text(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.text(0.1, 0.5, "only text here", color="#1b5e20")  # the report's verdict colours
    ax.text(0.1, 0.3, "and here", color="#e65100")
    ax.axis("off")
    text_only = tmp_path / "text.png"
    fig.savefig(text_only)
    ax.plot([0, 1], [0, 1], lw=8, color="tab:blue")
    with_plot = tmp_path / "plot.png"
    fig.savefig(with_plot)
    plt.close(fig)
    assert plot_pixel_share(text_only)[0] == 0.0
    assert plot_pixel_share(with_plot)[0] > 0.001

"""The offline page for ``dvc plots show --html-template``: vega, vega-lite and vega-embed inline, no network.

The libraries come from the PyPI package ``vl-convert-python``. The committed ``.dvc/plots/offline_page.html`` is
:func:`offline_html_template`'s text (tests/test_plots.py keeps it current); no stage imports this module, so the
report stage does not depend on it.
"""

from __future__ import annotations

OFFLINE_TEMPLATE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>embedlab plots</title>
    <!-- vega VEGA_VERSION, vega-lite VEGALITE_VERSION, vega-embed EMBED_VERSION: inline, from vl-convert-python -->
    <script type="text/javascript">
BUNDLE
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def offline_html_template() -> str:
    """An HTML template for ``dvc plots show`` with the vega libraries inline: no CDN, renders offline.

    DVC fills ``{plot_divs}``; the template has no ``{scripts}`` placeholder, which is where DVC would put its
    ``<script src="https://cdn...">`` tags. Vega-Lite is the newest 5.x the package ships, the major version DVC's
    plot templates declare (``$schema`` .../vega-lite/v5.json), so vega-embed renders them without a version
    mismatch. The committed ``.dvc/plots/offline_page.html`` is this text (tests/test_plots.py keeps it current).
    """
    import vl_convert as vlc

    v5 = [v for v in vlc.get_vegalite_versions() if v.startswith("5.")]
    vegalite = max(v5, key=lambda v: tuple(int(x) for x in v.split(".")))
    bundle = vlc.javascript_bundle(vl_version=vegalite)
    if "</script" in bundle.lower():  # would end the inline script early
        raise RuntimeError("the vega bundle contains '</script'; it cannot be inlined")
    return (
        OFFLINE_TEMPLATE.replace("VEGA_VERSION", vlc.get_vega_version())
        .replace("VEGALITE_VERSION", vegalite)
        .replace("EMBED_VERSION", vlc.get_vega_embed_version())
        .replace("BUNDLE", bundle)
    )

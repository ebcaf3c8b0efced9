"""Why a trained network maps what it maps (paper Fig. 13 and its first stated limitation).

- :mod:`~landslide.explain.gradcam`: Grad-CAM heatmaps of the last decoder features;
- :mod:`~landslide.explain.excitation`: what ResU-SENet's SE modules weigh, per channel;
- :mod:`~landslide.explain.band_importance`: each input band's contribution, by integrated gradients
  and by band ablation;
- :mod:`~landslide.explain.samples`: the test patches they are measured on;
- :mod:`~landslide.explain.figures`: the panel and the plots;
- :mod:`~landslide.explain.subjects`: the models explained, with their runs and test data;
- :mod:`~landslide.explain.settings`, :mod:`~landslide.explain.errors`: the knobs, the error;
- :mod:`~landslide.explain.tracking`: the files written and what the run gets;
- :mod:`~landslide.explain.command`: ``explain.py``, all of it in order.
"""

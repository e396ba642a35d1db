"""The course's data: everything generated or read from an installed package, nothing downloaded.

* :mod:`course_lib.data.toy2d`: the spiral (swiss roll, arms "person", "dog", "cat"), two
  moons, Gaussian mixtures; dense references for 2D metrics.
* :mod:`course_lib.data.shapes`: the captioned shapes world (rendering, :class:`ShapesDataset`);
  what exists in it is in :mod:`course_lib.data.world`, its words in
  :mod:`course_lib.data.captions`.
* :mod:`course_lib.data.digits`: real handwritten digits from scikit-learn (UCI ML hand-written
  digits, CC BY 4.0; scikit-learn is BSD-3-Clause), captioned.
* :mod:`course_lib.data.tokenizer`: the word-level :class:`Tokenizer` of the captions.
* :mod:`course_lib.data.judge`: the :class:`Judge` that reads shapes images back into
  attributes (shipped weights in ``data/judge``).
* :mod:`course_lib.data.preview`: ``show_grid`` for captioned image grids (matplotlib).

Each module imports with torch and numpy alone; scikit-learn and matplotlib are imported on
first use.
"""

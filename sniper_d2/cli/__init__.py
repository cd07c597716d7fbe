"""The command-line programs, installed as console scripts and also run by the repository's scripts.

==========================  ===================================  ==================================
console script              module                               repository script (thin wrapper)
==========================  ===================================  ==================================
``sniper-train``            :mod:`sniper_d2.cli.train`           ``train_net.py``
``sniper-predict``          :mod:`sniper_d2.cli.predict`         ``tools/predict.py``
``sniper-analyze``          :mod:`sniper_d2.cli.analyze_dataset` ``tools/analyze_dataset.py``
``sniper-visualize``        :mod:`sniper_d2.cli.visualize_chips` ``tools/visualize_chips.py``
``sniper-visualize-focus``  :mod:`sniper_d2.cli.visualize_focus` ``tools/visualize_focus.py``
==========================  ===================================  ==================================

Each module's ``run(argv=None)`` is the console script (command-line arguments, exit status 0);
its ``main`` runs the program in-process and returns what it made. ``train`` runs YAML configs with
:class:`~sniper_d2.SniperTrainer` and Python (LazyConfig) configs with
:mod:`sniper_d2.cli.lazy_train`. The packaged configs: ``python -m sniper_d2.model_zoo``.
"""

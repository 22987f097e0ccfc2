"""Generative synthesis: models of the training rows that generate new rows, class by class.

>>> from recexp.synthesis import GENERATORS, quality_report
>>> sorted(GENERATORS)
['gan', 'gaussian_copula', 'vae']
>>> gen = GENERATORS["vae"](epochs=30, random_state=0).fit(train.frame, train.schema)   # doctest: +SKIP
>>> rows = gen.sample(conditions={"buy": 2000})                                            # doctest: +SKIP
>>> quality_report(train.frame, rows, train.schema).score                                  # doctest: +SKIP

Adding a generator is one :class:`Generator` subclass and one entry in :data:`GENERATORS`.
"""

from __future__ import annotations

from typing import Any

from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.synthesis.base import Generator, NeuralGenerator
from recexp.synthesis.copula import GaussianCopula
from recexp.synthesis.gan import GAN
from recexp.synthesis.privacy import refuse_privacy
from recexp.synthesis.quality import QualityReport, quality_report
from recexp.synthesis.report import SynthesisReport, describe_fit
from recexp.synthesis.vae import VAE

#: Stable name -> generator class. Names are stored in run specs: never rename one.
GENERATORS: dict[str, type[Generator]] = {
    "gan": GAN,
    "vae": VAE,
    "gaussian_copula": GaussianCopula,
}


def get_generator(name: str, **params: Any) -> Generator:
    """The registered generator called ``name``, built with ``params``."""
    try:
        cls = GENERATORS[name]
    except KeyError:
        raise InvalidParameterError(
            _("There is no generator called {name!r}. Generators: {generators}.").format(
              name=name, generators=', '.join(GENERATORS))) from None
    if not cls.private_training:
        refuse_privacy(cls.__name__, params)
    return cls(**params)


__all__ = ["GENERATORS", "GAN", "VAE", "GaussianCopula", "Generator", "NeuralGenerator", "QualityReport",
           "SynthesisReport", "describe_fit", "get_generator", "quality_report"]

"""Models and their trainer: plain ``nn.Module``s behind small parameter-spec classes.

>>> from recexp.models import MODELS
>>> sorted(MODELS)
['dcn_v2', 'deepfm', 'din', 'lightgbm', 'logreg', 'mlp', 'sasrec', 'two_tower', 'wide_deep']
"""

from recexp.models.base import Inputs, Model, TensorData, input_spec, load_checkpoint, save_checkpoint, to_tensors
from recexp.models.device import resolve_device
from recexp.models.lightgbm import LightGBM
from recexp.models.sequential import SASRec, TwoTower
from recexp.models.trainer import LOSSES, TrainConfig, TrainResult, evaluate, predict_proba, rank_items, train
from recexp.models.zoo import DCNv2, DeepFM, DIN, LogisticRegression, MLP, WideDeep
from recexp.tasks import applies_to

#: Stable name -> model class (no base class registered).
MODELS: dict[str, type[Model]] = {cls.name: cls for cls in (LogisticRegression, MLP, WideDeep, DeepFM, DCNv2, DIN,
                                                                LightGBM, TwoTower, SASRec)}


def models_for(task: str) -> dict[str, type[Model]]:
    """The registered models that serve ``task`` (classifiers for class tasks, rankers for ``next_item``)."""
    return {name: cls for name, cls in MODELS.items() if applies_to(cls, task)}

__all__ = ["MODELS", "models_for", "LOSSES", "Model", "Inputs", "TensorData", "TrainConfig", "TrainResult", "train", "evaluate",
           "predict_proba", "rank_items", "resolve_device", "input_spec", "to_tensors", "save_checkpoint", "load_checkpoint",
           "LogisticRegression", "MLP", "WideDeep", "DeepFM", "DCNv2", "DIN", "LightGBM", "TwoTower", "SASRec"]

"""Which class rebuilds each kind of checkpoint, so that `load_model(path)` needs no class."""
from __future__ import annotations

from torch import nn

from starter.models.autoencoder import Autoencoder
from starter.models.classifier import Classifier
from starter.models.pixelcnn import GatedPixelCNN, PixelCNN
from starter.models.prior import CodePrior, GatedCodePrior
from starter.models.two_level import BottomPrior, TwoLevelVQVAE
from starter.models.transformer import TransformerPrior
from starter.models.vae import VAE
from starter.models.vq import VQVAE

KINDS: dict[str, type[nn.Module]] = {
    "autoencoder": Autoencoder, "vae": VAE, "vqvae": VQVAE, "two_level_vqvae": TwoLevelVQVAE,
    "pixelcnn": PixelCNN, "gated_pixelcnn": GatedPixelCNN, "prior": CodePrior, "gated_prior": GatedCodePrior,
    "bottom_prior": BottomPrior, "classifier": Classifier, "transformer_prior": TransformerPrior,
}


def kind_of(model: nn.Module) -> str:
    """The checkpoint kind of a model: the registry's name for its class."""
    for kind, cls in KINDS.items():
        if type(model) is cls:
            return kind
    raise KeyError(f"{type(model).__name__} is not a kind of checkpoint the course knows: {sorted(KINDS)}")

"""A conditional tabular VAE in the style of TVAE (Xu et al., NeurIPS 2019), written for recexp.

Like TVAE: the rows are encoded by :mod:`recexp.synthesis.transformer` (mode-specific normalisation,
one-hot groups); an encoder maps a row to a Gaussian posterior over a latent vector, a decoder maps
the latent vector back; the loss is the evidence lower bound with a learned per-dimension noise scale
for the normalised values (Gaussian likelihood) and cross-entropy for every one-hot group.

Unlike TVAE, both the encoder and the decoder receive the class label (a conditional VAE), so
``sample(conditions={"buy": 500})`` decodes prior draws *given* ``buy``: every returned row is a
``buy`` row, with no rejection step. One-hot groups are decoded by sampling from the decoder's
softmax (TVAE takes the arg-max, which never produces a rare category), and values get the learned
noise scale added, as TVAE does.

With ``epsilon`` (differential privacy, :mod:`recexp.synthesis.privacy`) the encoder and decoder train
with DP-SGD on Poisson samples of the rows; the decoder's noise scale stays at its initial 0.1 (a
free parameter outside a layer has no per-row gradient in Opacus).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recexp.params import Float, Int
from recexp.synthesis.base import NeuralGenerator, SpanLayout, linear


class _Encoder(nn.Module):
    def __init__(self, input_dim: int, hidden: int, latent: int, generator: torch.Generator, device: torch.device):
        super().__init__()
        self.body = nn.Sequential(linear(input_dim, hidden, generator, device), nn.ReLU(),
                                  linear(hidden, hidden, generator, device), nn.ReLU())
        self.mu = linear(hidden, latent, generator, device)
        self.logvar = linear(hidden, latent, generator, device)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h)


class _Decoder(nn.Module):
    def __init__(self, latent: int, hidden: int, output_dim: int, generator: torch.Generator, device: torch.device):
        super().__init__()
        self.body = nn.Sequential(linear(latent, hidden, generator, device), nn.ReLU(),
                                  linear(hidden, hidden, generator, device), nn.ReLU(),
                                  linear(hidden, output_dim, generator, device))
        self.sigma = nn.Parameter(torch.full((output_dim,), 0.1, device=device))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class _Autoencoder(nn.Module):
    """Encoder and decoder as one module (what DP-SGD wraps): rows and labels in, posterior and reconstruction out."""

    def __init__(self, encoder: _Encoder, decoder: _Decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor, cond: torch.Tensor, eps: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(torch.cat([x, cond], dim=1))
        z = mu + eps * torch.exp(0.5 * logvar)
        return mu, logvar, self.decoder(torch.cat([z, cond], dim=1))


class VAE(NeuralGenerator):
    """Conditional tabular VAE (TVAE-style, class-conditional encoder and decoder).

    Parameters
    ----------
    epochs : int
        Passes over the training rows.
    batch_size : int
        Rows per step.
    learning_rate : float
        Adam step size (weight decay 1e-5, as TVAE).
    latent_dim : int
        Size of the latent vector.
    hidden : int
        Width of the two hidden layers of the encoder and of the decoder.
    loss_factor : float
        Weight of the reconstruction term against the KL term (TVAE's default is 2).
    epsilon, delta, max_grad_norm
        Differential privacy (DP-SGD on the encoder and decoder); see the module docstring.
    ids, eval_every, max_categories, device, random_state
        See :class:`~recexp.synthesis.base.NeuralGenerator`.

    Examples
    --------
    >>> vae = VAE(epochs=50, random_state=0).fit(train.frame, train.schema)        # doctest: +SKIP
    >>> vae.sample(conditions={"buy": 1000})                                          # doctest: +SKIP
    """

    name = "vae"
    description = "Conditional tabular VAE (TVAE-style)"
    params = {
        **NeuralGenerator.params,
        "learning_rate": Float(0, 1, low_open=True, help="Adam step size."),
        "latent_dim": Int(1, 1024, help="Size of the latent vector."),
        "hidden": Int(8, 4096, help="Width of the hidden layers."),
        "loss_factor": Float(0, None, low_open=True, help="Weight of reconstruction against the KL term."),
    }

    def __init__(self, epochs=100, batch_size=500, learning_rate=1e-3, latent_dim=128, hidden=128, loss_factor=2.0,
                 eval_every=5, max_categories=100, epsilon=None, delta=None, max_grad_norm=1.0, ids="new",
                 device="auto", random_state=None):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.loss_factor = loss_factor
        self.eval_every = eval_every
        self.max_categories = max_categories
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.ids = ids
        self.device = device
        self.random_state = random_state

    def _build(self, data: torch.Tensor, categories: torch.Tensor, labels: torch.Tensor) -> None:
        device, g = self.device_, self.torch_generator_
        n_classes = self.schema_.n_classes
        self.data_ = data
        self.onehot_ = torch.nn.functional.one_hot(labels, n_classes).float()
        self.layout_ = SpanLayout(self.transformer_.spans_, self.transformer_.output_dim_, device)
        self.targets_ = (data[:, self.layout_.index] * self.layout_.mask).argmax(dim=2)   # (n, groups)
        self.encoder_ = _Encoder(data.shape[1] + n_classes, self.hidden, self.latent_dim, g, device)
        self.decoder_ = _Decoder(self.latent_dim + n_classes, self.hidden, data.shape[1], g, device)
        self.autoencoder_ = _Autoencoder(self.encoder_, self.decoder_)
        if self.epsilon is not None:
            self.decoder_.sigma.requires_grad_(False)
        self.optimizer_ = torch.optim.Adam([p for p in self.autoencoder_.parameters() if p.requires_grad],
                                           lr=self.learning_rate, weight_decay=1e-5)
        if self.epsilon is not None:
            self._privatize("autoencoder_", "optimizer_")

    def _modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder_, "decoder": self.decoder_}

    def _batches(self):
        """Row indices of every step of one epoch: a shuffled partition, or Poisson samples under DP."""
        if self.private_ is not None:
            for rows in self.private_.batches():
                yield rows.to(self.device_)
            return
        order = torch.randperm(self.n_rows_, generator=self.torch_generator_, device=self.device_)
        for start in range(0, self.n_rows_, self.batch_size):
            yield order[start:start + self.batch_size]

    def _train_epoch(self) -> dict[str, float]:
        g = self.torch_generator_
        values = self.layout_.value_columns
        totals = torch.zeros(2, device=self.device_)
        steps = 0
        for rows in self._batches():
            x, cond, targets = self.data_[rows], self.onehot_[rows], self.targets_[rows]
            eps = torch.randn((len(rows), self.latent_dim), generator=g, device=self.device_)
            mu, logvar, recon = self.autoencoder_(x, cond, eps)
            sigma = self.decoder_.sigma[values]
            gaussian = ((x[:, values] - torch.tanh(recon[:, values])) ** 2 / 2 / sigma ** 2).sum() \
                + torch.log(sigma).sum() * len(rows)
            log_proba = torch.log_softmax(self.layout_.padded(recon), dim=2)
            cross_entropy = -log_proba.gather(2, targets.unsqueeze(2)).sum()
            kl = -0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp())
            reconstruction = gaussian + cross_entropy
            loss = (self.loss_factor * reconstruction + kl) / max(len(rows), 1)   # a Poisson batch may be empty
            self.optimizer_.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer_.step()
            with torch.no_grad():
                self.decoder_.sigma.clamp_(0.01, 1.0)
            totals += torch.stack([reconstruction.detach(), kl.detach()]) / max(len(rows), 1)
            steps += 1
        reconstruction, kl = (totals / steps).tolist()
        return {"reconstruction_loss": reconstruction, "kl_loss": kl}

    def _generate(self, labels: torch.Tensor) -> np.ndarray:
        g = self.torch_generator_
        cond = torch.nn.functional.one_hot(labels, self.schema_.n_classes).float()
        z = torch.randn((len(labels), self.latent_dim), generator=g, device=self.device_)
        recon = self.decoder_(torch.cat([z, cond], dim=1))
        output = self.layout_.activate(recon, 1.0, g)         # Gumbel-max: arg-max later is a softmax draw
        values = self.layout_.value_columns
        noise = torch.randn((len(labels), len(values)), generator=g, device=self.device_)
        output[:, values] = (output[:, values] + noise * self.decoder_.sigma[values]).clamp(-1, 1)
        return output.float().cpu().numpy()

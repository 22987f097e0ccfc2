"""A conditional tabular GAN in the style of CTGAN (Xu et al., NeurIPS 2019), written for recexp.

What it shares with CTGAN: mode-specific normalisation of numeric columns
(:mod:`recexp.synthesis.transformer`), a conditional vector with training-by-sampling (a discrete
column is picked, one of its values is drawn with probability proportional to the log of its
frequency, and a real row with that value is the matching real example), residual generator blocks
with batch normalisation, Gumbel-softmax outputs for one-hot groups, a PacGAN discriminator (``pac``
rows judged together) and the WGAN-GP loss with gradient penalty.

What is different:

* The **label is always part of the condition** (a one-hot block of the conditional vector) and
  the discriminator sees it with every row, so this is a class-conditional GAN: ``sample(conditions=
  {"buy": 500})`` feeds ``buy`` to the generator and every row it returns is a ``buy`` row, with no
  rejection sampling. During training the label is the picked discrete column half of the time (all
  of the time without categorical features), with the log-frequency draw that favours rare classes.
  At sampling time only the label block is set, a pattern the generator was trained on.
* Everything runs on whole-batch tensor operations on the device: the training-by-sampling draw is
  a vectorised gather from per-value row lists kept on the device, and the activations and the
  conditional loss treat all one-hot groups at once through one padded gather. (CTGAN draws the
  matching real rows in a Python loop over the batch and activates column by column.)
* Randomness (weights, noise, dropout masks, Gumbel noise, batches) comes from generators derived
  from ``random_state``; the global RNGs are not touched.

With ``epsilon`` (differential privacy, :mod:`recexp.synthesis.privacy`) the discriminator trains with
DP-SGD, and three things change so that every real row's influence is one clipped gradient: each
step's real rows are a Poisson sample (no training-by-sampling), conditioned on their label only; the
discriminator judges rows one by one (``pac`` is not used) and sees each real row paired with a fake
row of the same label as one sample; and the loss is the standard GAN cross-entropy (the gradient
penalty needs a second backward pass per row, which DP-SGD's per-row gradients do not support). The
generator's steps draw labels from the class counts and have no conditional loss.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recexp.errors import InvalidParameterError
from recexp.i18n import _
from recexp.params import Float, Int
from recexp.synthesis.base import NeuralGenerator, SeededDropout, SpanLayout, linear


class _ConditionSampler:
    """Training-by-sampling: conditional vectors and the real rows that match them, drawn on the device.

    Discrete column 0 is the label; columns 1.. are the categorical features with at least two
    one-hot slots. A value of the picked column is drawn with probability proportional to
    ``log(1 + count)``, then a real row holding it uniformly.
    """

    def __init__(self, labels: torch.Tensor, categories: torch.Tensor, slots: list[int], n_classes: int,
                 device: torch.device):
        self.n_classes = n_classes
        used = [j for j, n in enumerate(slots) if n >= 2]
        self.slot_offset = torch.tensor(np.cumsum([0] + [slots[j] for j in used])[:-1], dtype=torch.long,
                                        device=device)
        self.cond_dim = n_classes + int(sum(slots[j] for j in used))
        self.used = used
        columns = [labels] + [categories[:, j] for j in used]
        sizes = [n_classes] + [slots[j] for j in used]
        width = max(sizes)
        self.n_columns = len(columns)
        cumulative = torch.ones((self.n_columns, width), dtype=torch.float64)
        start = torch.zeros((self.n_columns, width), dtype=torch.long)
        count = torch.zeros((self.n_columns, width), dtype=torch.long)
        orders, offset = [], 0
        for c, (values, size) in enumerate(zip(columns, sizes)):
            values = values.cpu()
            counts = torch.bincount(values, minlength=size)
            weights = torch.log1p(counts.double())
            cumulative[c, :size] = torch.cumsum(weights / weights.sum(), 0)
            count[c, :size] = counts
            start[c, :size] = offset + torch.cumsum(counts, 0) - counts
            orders.append(torch.argsort(values, stable=True))
            offset += len(values)
        cumulative[:, -1] = 1.0
        self.cumulative = cumulative.float().to(device)
        self.start, self.count = start.to(device), count.to(device)
        self.rows = torch.cat(orders).to(device)
        self.labels = labels
        self.label_share = 1.0 if not used else 0.5

    def draw(self, batch: int, generator: torch.Generator
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(cond, rows, column, value)``: conditional vectors, matching real row indices, the
        picked discrete column (0 = label) and its drawn value."""
        device = self.rows.device
        u = torch.rand((3, batch), generator=generator, device=device)
        if self.n_columns > 1:
            other = 1 + (u[0] * (self.n_columns - 1)).long().clamp_(max=self.n_columns - 2)
            pick_label = torch.rand(batch, generator=generator, device=device) < self.label_share
            column = torch.where(pick_label, torch.zeros_like(other), other)
        else:
            column = torch.zeros(batch, dtype=torch.long, device=device)
        value = (u[1, :, None] > self.cumulative[column]).sum(1).clamp_(max=self.cumulative.shape[1] - 1)
        # a value without rows has probability 0 (reachable only through float rounding): take the
        # column's most frequent value instead. No data-dependent branch: no host-device sync per step.
        value = torch.where(self.count[column, value] == 0, self.count[column].argmax(1), value)
        counts = self.count[column, value]
        position = self.start[column, value] + torch.minimum((u[2] * counts).long(), counts - 1)
        rows = self.rows[position]
        cond = torch.zeros((batch, self.cond_dim), device=device)
        cond[torch.arange(batch, device=device), self.labels[rows]] = 1.0
        if self.used:
            is_feature = (column > 0).float()
            slot = self.n_classes + self.slot_offset[(column - 1).clamp(min=0)] + value
            cond.scatter_add_(1, slot.clamp(max=self.cond_dim - 1)[:, None], is_feature[:, None])
        return cond, rows, column, value

    def for_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Conditional vectors that set only the label block (the sampling-time pattern)."""
        cond = torch.zeros((len(labels), self.cond_dim), device=labels.device)
        cond[torch.arange(len(labels), device=labels.device), labels] = 1.0
        return cond


class _Residual(nn.Module):
    def __init__(self, i: int, o: int, generator: torch.Generator, device: torch.device):
        super().__init__()
        self.fc = linear(i, o, generator, device)
        self.bn = nn.BatchNorm1d(o, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(self.bn(self.fc(x))), x], dim=1)


class _GeneratorNet(nn.Module):
    def __init__(self, noise_dim: int, cond_dim: int, hidden: tuple[int, ...], output_dim: int,
                 generator: torch.Generator, device: torch.device):
        super().__init__()
        layers, width = [], noise_dim + cond_dim
        for h in hidden:
            layers.append(_Residual(width, h, generator, device))
            width += h
        self.body = nn.Sequential(*layers)
        self.head = linear(width, output_dim, generator, device)

    def forward(self, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(torch.cat([noise, cond], dim=1)))


class _Discriminator(nn.Module):
    def __init__(self, input_dim: int, hidden: tuple[int, ...], pac: int, generator: torch.Generator,
                 device: torch.device):
        super().__init__()
        self.pac = pac
        layers, width = [], input_dim * pac
        for h in hidden:
            layers += [linear(width, h, generator, device), nn.LeakyReLU(0.2), SeededDropout(0.5, generator)]
            width = h
        layers.append(linear(width, 1, generator, device))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pac == 1:                       # any leading shape: DP training feeds (rows, 2, features)
            return self.body(x)
        return self.body(x.reshape(-1, x.shape[1] * self.pac))


class GAN(NeuralGenerator):
    """Conditional tabular GAN (CTGAN-style, class-conditional, WGAN-GP with PacGAN).

    Parameters
    ----------
    epochs : int
        Passes over the training rows (``n_rows // batch_size`` steps each, at least one).
    batch_size : int
        Rows per step; a multiple of ``pac``.
    generator_lr, discriminator_lr : float
        Adam step sizes (betas 0.5, 0.9; weight decay 1e-6).
    discriminator_steps : int
        Discriminator updates per generator update.
    pac : int
        Rows the discriminator judges together (PacGAN), against mode collapse.
    noise_dim : int
        Size of the generator's random input.
    hidden : int
        Width of each of the two generator and two discriminator layers.
    epsilon, delta, max_grad_norm
        Differential privacy (DP-SGD on the discriminator); see the module docstring.
    ids, eval_every, max_categories, device, random_state
        See :class:`~recexp.synthesis.base.NeuralGenerator`.

    Examples
    --------
    >>> gan = GAN(epochs=50, random_state=0).fit(train.frame, train.schema)        # doctest: +SKIP
    >>> gan.sample(conditions={"buy": 1000})                                          # doctest: +SKIP
    """

    name = "gan"
    description = "Conditional tabular GAN (CTGAN-style: mode-specific normalisation, PacGAN, WGAN-GP)"
    params = {
        **NeuralGenerator.params,
        "generator_lr": Float(0, 1, low_open=True, help="Adam step size of the generator."),
        "discriminator_lr": Float(0, 1, low_open=True, help="Adam step size of the discriminator."),
        "discriminator_steps": Int(1, 10, help="Discriminator updates per generator update."),
        "pac": Int(1, 64, help="Rows the discriminator judges together (PacGAN)."),
        "noise_dim": Int(1, 1024, help="Size of the generator's random input."),
        "hidden": Int(8, 4096, help="Width of the hidden layers."),
    }

    def __init__(self, epochs=100, batch_size=500, generator_lr=2e-4, discriminator_lr=2e-4,
                 discriminator_steps=1, pac=10, noise_dim=128, hidden=256, eval_every=5, max_categories=100,
                 epsilon=None, delta=None, max_grad_norm=1.0, ids="new", device="auto", random_state=None):
        self.epochs = epochs
        self.batch_size = batch_size
        self.generator_lr = generator_lr
        self.discriminator_lr = discriminator_lr
        self.discriminator_steps = discriminator_steps
        self.pac = pac
        self.noise_dim = noise_dim
        self.hidden = hidden
        self.eval_every = eval_every
        self.max_categories = max_categories
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.ids = ids
        self.device = device
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.batch_size % self.pac:
            raise InvalidParameterError(
                _("GAN: batch_size ({batch_size}) must be a multiple of pac ({pac}). Use batch_size={value} or "
                  "change pac.").format(
                  batch_size=self.batch_size, pac=self.pac,
                  value=self.batch_size // self.pac * self.pac or self.pac))

    def _build(self, data: torch.Tensor, categories: torch.Tensor, labels: torch.Tensor) -> None:
        device, g = self.device_, self.torch_generator_
        self.data_ = data
        self.labels_ = labels
        self.label_weights_ = torch.bincount(labels, minlength=self.schema_.n_classes).float()
        self.layout_ = SpanLayout(self.transformer_.spans_, self.transformer_.output_dim_, device)
        slots = [info.n_slots for info in self.transformer_.categorical_]
        self.sampler_ = _ConditionSampler(labels, categories, slots, self.schema_.n_classes, device)
        self.cat_span_ = torch.tensor(
            [self.layout_.span_of[(self.transformer_.categorical_[j].column, "category")] for j in self.sampler_.used],
            dtype=torch.long, device=device)
        hidden = (self.hidden, self.hidden)
        self.generator_ = _GeneratorNet(self.noise_dim, self.sampler_.cond_dim, hidden, data.shape[1], g, device)
        pac = self.pac if self.epsilon is None else 1
        self.discriminator_ = _Discriminator(data.shape[1] + self.sampler_.cond_dim, hidden, pac, g, device)
        self.optimizer_g_ = torch.optim.Adam(self.generator_.parameters(), lr=self.generator_lr, betas=(0.5, 0.9),
                                             weight_decay=1e-6)
        self.optimizer_d_ = torch.optim.Adam(self.discriminator_.parameters(), lr=self.discriminator_lr,
                                             betas=(0.5, 0.9), weight_decay=1e-6)
        if self.epsilon is not None:
            self._privatize("discriminator_", "optimizer_d_")

    def _modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator_, "discriminator": self.discriminator_}

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn((n, self.noise_dim), generator=self.torch_generator_, device=self.device_)

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        groups = real.shape[0] // self.pac
        alpha = torch.rand((groups, 1, 1), generator=self.torch_generator_, device=self.device_)
        alpha = alpha.expand(groups, self.pac, real.shape[1]).reshape(-1, real.shape[1])
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        score = self.discriminator_(mixed)
        gradients = torch.autograd.grad(score.sum(), mixed, create_graph=True)[0]
        norms = gradients.reshape(-1, self.pac * real.shape[1]).norm(2, dim=1)
        return 10.0 * ((norms - 1) ** 2).mean()

    def _conditional_loss(self, logits: torch.Tensor, column: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Cross-entropy between the generator's logits of the picked categorical column and its drawn value."""
        if not len(self.cat_span_):
            return logits.new_zeros(())
        rows = torch.arange(len(column), device=logits.device)
        groups = self.layout_.padded(logits)
        picked = groups[rows, self.cat_span_[(column - 1).clamp(min=0)]]
        log_proba = torch.log_softmax(picked, dim=1)
        chosen = log_proba[rows, value.clamp(max=picked.shape[1] - 1)]
        # rows whose picked column is the label carry no feature condition: weight 0
        return -torch.where(column > 0, chosen, torch.zeros_like(chosen)).sum() / len(column)

    def _train_epoch(self) -> dict[str, float]:
        if self.private_ is not None:
            return self._train_epoch_private()
        steps = max(1, self.n_rows_ // self.batch_size)
        g, batch = self.torch_generator_, self.batch_size
        loss_d_total = torch.zeros((), device=self.device_)
        loss_g_total = torch.zeros((), device=self.device_)
        for _ in range(steps):
            for _ in range(self.discriminator_steps):
                cond, rows, _, _ = self.sampler_.draw(batch, g)
                with torch.no_grad():
                    fake = self.layout_.activate(self.generator_(self._noise(batch), cond), 0.2, g)
                real = torch.cat([self.data_[rows], cond], dim=1)
                fake = torch.cat([fake, cond], dim=1)
                loss_d = self.discriminator_(fake).mean() - self.discriminator_(real).mean()
                penalty = self._gradient_penalty(real, fake)
                self.optimizer_d_.zero_grad(set_to_none=True)
                (loss_d + penalty).backward()
                self.optimizer_d_.step()
            cond, _, column, value = self.sampler_.draw(batch, g)
            logits = self.generator_(self._noise(batch), cond)
            fake = torch.cat([self.layout_.activate(logits, 0.2, g), cond], dim=1)
            loss_g = -self.discriminator_(fake).mean() + self._conditional_loss(logits, column, value)
            self.optimizer_g_.zero_grad(set_to_none=True)
            loss_g.backward()
            self.optimizer_g_.step()
            loss_d_total += loss_d.detach()
            loss_g_total += loss_g.detach()
        return {"generator_loss": float(loss_g_total) / steps, "discriminator_loss": float(loss_d_total) / steps}

    def _train_epoch_private(self) -> dict[str, float]:
        """One epoch of DP-SGD on the discriminator (one step per Poisson batch), with a generator step
        after every ``discriminator_steps`` of them."""
        g, bce = self.torch_generator_, nn.functional.binary_cross_entropy_with_logits
        loss_d_total = torch.zeros((), device=self.device_)
        loss_g_total = torch.zeros((), device=self.device_)
        steps = generator_steps = 0
        for rows in self.private_.batches():
            rows = rows.to(self.device_)
            cond = self.sampler_.for_labels(self.labels_[rows])
            with torch.no_grad():      # batch norm needs two rows: pad a batch of 0 or 1 and drop the padding
                padded = torch.cat([cond, cond.new_zeros((max(0, 2 - len(rows)), cond.shape[1]))])
                fake = self.layout_.activate(self.generator_(self._noise(len(padded)), padded), 0.2, g)[:len(rows)]
            pairs = torch.stack([torch.cat([self.data_[rows], cond], dim=1), torch.cat([fake, cond], dim=1)], dim=1)
            scores = self.discriminator_(pairs)[..., 0]                 # (rows, 2): one sample per real row
            loss_d = (bce(scores[:, 0], torch.ones_like(scores[:, 0]), reduction="sum")
                      + bce(scores[:, 1], torch.zeros_like(scores[:, 1]), reduction="sum")) / max(len(rows), 1)
            self.optimizer_d_.zero_grad(set_to_none=True)
            loss_d.backward()
            self.optimizer_d_.step()
            loss_d_total += loss_d.detach()
            steps += 1
            if steps % self.discriminator_steps == 0:
                loss_g_total += self._generator_step_private()
                generator_steps += 1
        return {"generator_loss": float(loss_g_total) / max(generator_steps, 1),
                "discriminator_loss": float(loss_d_total) / max(steps, 1)}

    def _generator_step_private(self) -> torch.Tensor:
        """A generator step against the private discriminator (its per-row gradient hooks off: no real rows)."""
        g, batch = self.torch_generator_, self.batch_size
        labels = torch.multinomial(self.label_weights_, batch, replacement=True, generator=g)
        cond = self.sampler_.for_labels(labels)
        fake = torch.cat([self.layout_.activate(self.generator_(self._noise(batch), cond), 0.2, g), cond], dim=1)
        self.discriminator_.disable_hooks()
        try:
            score = self.discriminator_(fake)
            loss_g = nn.functional.binary_cross_entropy_with_logits(score, torch.ones_like(score))
            self.optimizer_g_.zero_grad(set_to_none=True)
            loss_g.backward()
            self.optimizer_g_.step()
        finally:
            self.discriminator_.enable_hooks()
        return loss_g.detach()

    def _generate(self, labels: torch.Tensor) -> np.ndarray:
        cond = self.sampler_.for_labels(labels)
        output = self.layout_.activate(self.generator_(self._noise(len(labels)), cond), 0.2, self.torch_generator_)
        return output.float().cpu().numpy()

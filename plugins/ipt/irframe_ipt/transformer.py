"""IPT's shared body: a transformer encoder/decoder over flattened ``patch_dim x patch_dim`` feature patches.

The layout (sequence-first tensors ``(L, N, D)``), the module names and the residual structure follow
the official ``VisionTransformer`` of huawei-noah/Pretrained-IPT (``model/ipt.py``), so released
weights load unchanged and outputs match the official code.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from irframe.nn import onednn


def _with_pos(t: Tensor, pos: Tensor | None) -> Tensor:
    return t if pos is None else t + pos


def _norm(dim: int, no_norm: bool) -> nn.Module:
    return nn.Identity() if no_norm else nn.LayerNorm(dim)


def _fused(layer: nn.Module, x: Tensor) -> bool:
    """Whether ``layer`` may run oneDNN's fused inference kernels on ``x`` (:func:`irframe.nn.onednn.fusable`,
    in eval mode: dropout is then the identity)."""
    return not layer.training and onednn.fusable(x)


def _ffn_add(linear1: nn.Linear, linear2: nn.Linear, x: Tensor, residual: Tensor) -> Tensor:
    """``residual + linear2(relu(linear1(x)))`` with the ReLU and the addition inside oneDNN's matmuls
    (the inference path of the FFNs and of the MLP head)."""
    hidden = onednn.linear(x, linear1.weight, linear1.bias, "relu")
    return onednn.linear_add(hidden, residual, linear2.weight, linear2.bias)


def _attention_add(attn: nn.MultiheadAttention, query: Tensor, key: Tensor, value: Tensor, residual: Tensor) -> Tensor:
    """``residual + attn(query, key, value)[0]`` on oneDNN's matmuls (inference path).

    The same computation as ``nn.MultiheadAttention`` with ``need_weights=False``: the in-projections
    (one product for q and k when they are the same tensor, as in IPT's self-attention), scaled
    dot-product attention per head, then ``out_proj`` with the residual added inside the product.
    Sequence-first tensors ``(L, N, D)``.
    """
    length, n, d = query.shape
    heads = attn.num_heads
    w, b = attn.in_proj_weight, attn.in_proj_bias

    def part(i: int, j: int) -> tuple[Tensor, Tensor | None]:
        return w[i * d : j * d], None if b is None else b[i * d : j * d]

    if key is query:
        qk = onednn.linear(query, *part(0, 2))
        q, k = qk[..., :d], qk[..., d:]
    else:
        q, k = onednn.linear(query, *part(0, 1)), onednn.linear(key, *part(1, 2))
    v = onednn.linear(value, *part(2, 3))

    def split(t: Tensor) -> Tensor:  # (L, N, D) -> (N, heads, L, D / heads)
        return t.unflatten(-1, (heads, d // heads)).permute(1, 2, 0, 3)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    out = out.permute(2, 0, 1, 3).reshape(length, n, d)
    return onednn.linear_add(out, residual, attn.out_proj.weight, attn.out_proj.bias)


def _plain_mha(attn: nn.MultiheadAttention) -> bool:
    """``attn`` has none of the options :func:`_attention_add` does not reproduce."""
    return (
        attn.batch_first is False and attn.bias_k is None and attn.bias_v is None and not attn.add_zero_attn
        and attn.in_proj_weight is not None and attn._qkv_same_embed_dim
    )


class TransformerEncoderLayer(nn.Module):
    """Self-attention + FFN (ReLU). Pre-norm as officially; ``post_norm`` normalises after each residual."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int,
        dropout: float = 0.0,
        no_norm: bool = False,
        post_norm: bool = False,
    ) -> None:
        super().__init__()
        self.post_norm = post_norm
        # bias=False: the official attention has neither in_proj_bias nor out_proj.bias.
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, bias=False)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = _norm(d_model, no_norm)
        self.norm2 = _norm(d_model, no_norm)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        nn.init.kaiming_uniform_(self.self_attn.in_proj_weight, a=math.sqrt(5))  # official init

    def _ffn(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))

    def forward(self, src: Tensor, pos: Tensor | None = None) -> Tensor:
        if self.post_norm:
            qk = _with_pos(src, pos)
            src = self.norm1(src + self.dropout1(self.self_attn(qk, qk, src, need_weights=False)[0]))
            return self.norm2(src + self.dropout2(self._ffn(src)))
        src2 = self.norm1(src)
        qk = _with_pos(src2, pos)
        if _fused(self, src) and _plain_mha(self.self_attn):
            src = _attention_add(self.self_attn, qk, qk, src2, src)
            return _ffn_add(self.linear1, self.linear2, self.norm2(src), src)
        src = src + self.dropout1(self.self_attn(qk, qk, src2, need_weights=False)[0])
        return src + self.dropout2(self._ffn(self.norm2(src)))


class TransformerDecoderLayer(nn.Module):
    """Self-attention (queries carry the task embedding), cross-attention to the encoder output, FFN."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int,
        dropout: float = 0.0,
        no_norm: bool = False,
        post_norm: bool = False,
    ) -> None:
        super().__init__()
        self.post_norm = post_norm
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, bias=False)
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, bias=False)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = _norm(d_model, no_norm)
        self.norm2 = _norm(d_model, no_norm)
        self.norm3 = _norm(d_model, no_norm)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def _ffn(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))

    def _attend(self, tgt: Tensor, memory: Tensor, pos: Tensor | None, query_pos: Tensor | None) -> Tensor:
        q = _with_pos(tgt, query_pos)
        return self.multihead_attn(q, _with_pos(memory, pos), memory, need_weights=False)[0]

    def forward(
        self, tgt: Tensor, memory: Tensor, pos: Tensor | None = None, query_pos: Tensor | None = None
    ) -> Tensor:
        if self.post_norm:
            qk = _with_pos(tgt, query_pos)
            tgt = self.norm1(tgt + self.dropout1(self.self_attn(qk, qk, tgt, need_weights=False)[0]))
            tgt = self.norm2(tgt + self.dropout2(self._attend(tgt, memory, pos, query_pos)))
            return self.norm3(tgt + self.dropout3(self._ffn(tgt)))
        tgt2 = self.norm1(tgt)
        qk = _with_pos(tgt2, query_pos)
        if _fused(self, tgt) and _plain_mha(self.self_attn) and _plain_mha(self.multihead_attn):
            tgt = _attention_add(self.self_attn, qk, qk, tgt2, tgt)
            tgt2 = self.norm2(tgt)
            tgt = _attention_add(self.multihead_attn, _with_pos(tgt2, query_pos), _with_pos(memory, pos), memory, tgt)
            return _ffn_add(self.linear1, self.linear2, self.norm3(tgt), tgt)
        tgt = tgt + self.dropout1(self.self_attn(qk, qk, tgt2, need_weights=False)[0])
        tgt = tgt + self.dropout2(self._attend(self.norm2(tgt), memory, pos, query_pos))
        return tgt + self.dropout3(self._ffn(self.norm3(tgt)))


def _clones(layer: nn.Module, n: int) -> nn.ModuleList:
    # Deep copies, as officially: every layer starts from the same initial weights.
    return nn.ModuleList(copy.deepcopy(layer) for _ in range(n))


class TransformerEncoder(nn.Module):
    """A stack of encoder layers (``layers.<i>``)."""

    def __init__(self, layer: TransformerEncoderLayer, num_layers: int) -> None:
        super().__init__()
        self.layers = _clones(layer, num_layers)
        self.num_layers = num_layers

    def forward(self, src: Tensor, pos: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            src = layer(src, pos=pos)
        return src


class TransformerDecoder(nn.Module):
    """A stack of decoder layers (``layers.<i>``)."""

    def __init__(self, layer: TransformerDecoderLayer, num_layers: int) -> None:
        super().__init__()
        self.layers = _clones(layer, num_layers)
        self.num_layers = num_layers

    def forward(
        self, tgt: Tensor, memory: Tensor, pos: Tensor | None = None, query_pos: Tensor | None = None
    ) -> Tensor:
        for layer in self.layers:
            tgt = layer(tgt, memory, pos=pos, query_pos=query_pos)
        return tgt


class LearnedPositionalEncoding(nn.Module):
    """One learned embedding per patch position; ``position_ids`` is a persistent int64 buffer."""

    position_ids: Tensor

    def __init__(self, seq_length: int, embedding_dim: int) -> None:
        super().__init__()
        self.pe = nn.Embedding(seq_length, embedding_dim)
        self.seq_length = seq_length
        # Contiguous (1, L) rather than an expanded view, so safetensors can store it.
        self.register_buffer("position_ids", torch.arange(seq_length).unsqueeze(0))

    def forward(self) -> Tensor:
        """Position embeddings ``(1, L, D)``."""
        return self.pe(self.position_ids[:, : self.seq_length])


class VisionTransformer(nn.Module):
    """IPT's body. Input: features ``(N, C, img_dim, img_dim)``; output: the same shape.

    Args:
        img_dim: spatial size of the input features (IPT's ``patch_size``, 48).
        patch_dim: side of the feature patches that become tokens (3).
        num_channels: feature channels ``C`` (``n_feats``).
        embedding_dim: token width (``C * patch_dim**2``).
        num_heads: attention heads.
        num_layers: encoder layers (and as many decoder layers).
        hidden_dim: FFN width (``4 * embedding_dim``).
        num_queries: task query embeddings in the decoder.
        dropout_rate: dropout everywhere (0 officially).
        no_norm: replace LayerNorms by identities (and re-init linear weights, as officially).
        no_mlp: drop the linear encoding, the MLP head and the query embeddings.
        pos_every: add positions to q/k in every layer instead of once at the encoder input.
        no_pos: no position encoding at all.
        post_norm: post-norm layers (not in the official code, which is pre-norm).
    """

    def __init__(
        self,
        img_dim: int,
        patch_dim: int,
        num_channels: int,
        embedding_dim: int,
        num_heads: int,
        num_layers: int,
        hidden_dim: int,
        num_queries: int,
        dropout_rate: float = 0.0,
        no_norm: bool = False,
        no_mlp: bool = False,
        pos_every: bool = False,
        no_pos: bool = False,
        post_norm: bool = False,
    ) -> None:
        super().__init__()
        self.img_dim = img_dim
        self.patch_dim = patch_dim
        self.embedding_dim = embedding_dim
        self.no_mlp = no_mlp
        self.pos_every = pos_every
        self.no_pos = no_pos
        self.seq_length = (img_dim // patch_dim) ** 2
        self.flatten_dim = patch_dim * patch_dim * num_channels

        if not no_mlp:
            self.linear_encoding = nn.Linear(self.flatten_dim, embedding_dim)
            self.mlp_head = nn.Sequential(
                nn.Linear(embedding_dim, hidden_dim),
                nn.Dropout(dropout_rate),
                nn.ReLU(),
                nn.Linear(hidden_dim, self.flatten_dim),
                nn.Dropout(dropout_rate),
            )
            # One query per task: a full (L * D) sequence of decoder position/query embeddings.
            self.query_embed = nn.Embedding(num_queries, embedding_dim * self.seq_length)

        enc = TransformerEncoderLayer(embedding_dim, num_heads, hidden_dim, dropout_rate, no_norm, post_norm)
        self.encoder = TransformerEncoder(enc, num_layers)
        dec = TransformerDecoderLayer(embedding_dim, num_heads, hidden_dim, dropout_rate, no_norm, post_norm)
        self.decoder = TransformerDecoder(dec, num_layers)
        if not no_pos:
            self.position_encoding = LearnedPositionalEncoding(self.seq_length, embedding_dim)
        self.dropout_layer1 = nn.Dropout(dropout_rate)

        if no_norm:  # official: without LayerNorm, scale linear weights down to keep activations bounded
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, std=1 / m.weight.size(1))

    @property
    def num_queries(self) -> int:
        """Rows of the query embedding (0 with ``no_mlp``)."""
        return 0 if self.no_mlp else self.query_embed.num_embeddings

    def forward(self, x: Tensor, query_idx: int, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Run the body for one task query; with ``return_features`` also return ``(N, L, flatten_dim)``."""
        n = x.shape[0]
        p = self.patch_dim
        tokens = F.unfold(x, p, stride=p).permute(2, 0, 1)  # (L, N, C*p*p)

        query_pos = None
        fused = _fused(self, tokens)
        if not self.no_mlp:
            if fused:
                tokens = onednn.linear_add(tokens, tokens, self.linear_encoding.weight, self.linear_encoding.bias)
            else:
                tokens = self.dropout_layer1(self.linear_encoding(tokens)) + tokens
            query_pos = self.query_embed.weight[query_idx].view(-1, 1, self.embedding_dim).expand(-1, n, -1)

        pos = None if self.no_pos else self.position_encoding().transpose(0, 1)  # (L, 1, D)
        if self.pos_every:
            tokens = self.encoder(tokens, pos=pos)
            tokens = self.decoder(tokens, tokens, pos=pos, query_pos=query_pos)
        else:
            tokens = self.encoder(tokens if pos is None else tokens + pos)
            tokens = self.decoder(tokens, tokens, query_pos=query_pos)

        if not self.no_mlp:
            if fused:
                tokens = _ffn_add(self.mlp_head[0], self.mlp_head[3], tokens, tokens)  # type: ignore[arg-type]
            else:
                tokens = self.mlp_head(tokens) + tokens

        feats = tokens.transpose(0, 1).reshape(n, -1, self.flatten_dim)  # (N, L, C*p*p)
        out = F.fold(feats.transpose(1, 2), self.img_dim, p, stride=p)
        return (out, feats) if return_features else out

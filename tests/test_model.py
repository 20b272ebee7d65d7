"""Shapes through every module of the `tiny` config, determinism, trainability, bad input."""

from __future__ import annotations

import pytest
import torch

from napari_adaptiveclick.models.network.click_decoder import click_attention_maps
from napari_adaptiveclick.models.network.ms_deform_attn import (
    ms_deform_attn_core,
    ms_deform_attn_reference,
)
from napari_adaptiveclick.models.network.position import sine_position_encoding
from napari_adaptiveclick.models.network.vit import window_partition, window_unpartition
from napari_adaptiveclick.models.registry import CONFIGS, build_from_config, build_model, get_config

S = 256


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("tiny").eval()


def _inputs(batch: int = 2, size: int = S, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=g)
    prev = torch.rand(batch, 1, size, size, generator=g)
    clicks = torch.zeros(batch, 2, size, size)
    clicks[:, 0, 100:110, 100:110] = 1
    clicks[:, 1, 20:30, 200:210] = 1
    return image, prev, clicks


def test_every_module_shape(tiny):
    cfg = tiny.config
    image, prev, clicks = _inputs()
    tokens = tiny.patch_embed_coords(torch.cat([prev, clicks], 1))
    grid = S // cfg.vit.patch_size
    assert tokens.shape == (2, grid * grid, cfg.vit.embed_dim)
    vit_map = tiny.backbone(image, tokens)
    assert vit_map.shape == (2, cfg.vit.embed_dim, grid, grid)
    pyramid = tiny.pixel_decoder.neck(vit_map)
    assert [tuple(p.shape[-3:]) for p in pyramid] == [
        (c, S // s, S // s) for c, s in zip(cfg.neck.out_dims, (4, 8, 16, 32), strict=True)
    ]
    mask_features, multi_scale = tiny.pixel_decoder(vit_map)
    assert mask_features.shape == (2, cfg.pixel_decoder.mask_dim, S // 4, S // 4)
    assert [tuple(m.shape[-2:]) for m in multi_scale] == [
        (S // 32,) * 2,
        (S // 16,) * 2,
        (S // 8,) * 2,
    ]
    stages = tiny.click_aware_decoder(multi_scale, mask_features, clicks[:, :1])
    assert len(stages) == cfg.decoder.num_layers + 1
    for class_logits, mask_logits in stages:
        assert class_logits.shape == (2, cfg.decoder.num_queries, 2)
        assert mask_logits.shape == (2, cfg.decoder.num_queries, S // 4, S // 4)


def test_forward_output_dict(tiny):
    out = tiny(*_inputs())
    assert out["mask_logits"].shape == (2, 1, S, S)
    assert out["pred_logits"].shape == (2, 10, 2)
    assert len(out["aux_outputs"]) == tiny.config.decoder.num_layers
    assert torch.isfinite(out["mask_logits"]).all()


def test_fused_mask_is_class_weighted_sum_of_queries(tiny):
    out = tiny(*_inputs())
    up = torch.nn.functional.interpolate(
        out["pred_masks"], size=(S, S), mode="bilinear", align_corners=True
    )
    expected = (out["pred_logits"][..., 1].sigmoid()[..., None, None] * up).sum(1, keepdim=True)
    torch.testing.assert_close(out["mask_logits"], expected)


def test_deterministic(tiny):
    a = tiny(*_inputs(seed=3))["mask_logits"]
    b = tiny(*_inputs(seed=3))["mask_logits"]
    assert torch.equal(a, b)


def test_clicks_change_the_output(tiny):
    image, prev, clicks = _inputs()
    moved = torch.zeros_like(clicks)
    moved[:, 0, 30:40, 30:40] = 1
    assert not torch.allclose(
        tiny(image, prev, clicks)["mask_logits"], tiny(image, prev, moved)["mask_logits"]
    )


def test_forward_is_trainable():
    torch.manual_seed(1)
    model = build_model("tiny").train()
    out = model(*_inputs(batch=1))
    loss = out["mask_logits"].mean() + sum(s["pred_masks"].mean() for s in out["aux_outputs"])
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    missing = [n for n, g in grads.items() if g is None and "query_embed" not in n]
    assert not missing, f"parameters without gradient: {missing[:5]}"


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((1, 1, S, S), (1, 1, S, S), (1, 2, S, S)), "image must be"),
        (((1, 3, S, S), (1, 1, S, 128), (1, 2, S, S)), "prev_mask must be"),
        (((1, 3, S, S), (1, 1, S, S), (1, 3, S, S)), "click_maps must be"),
        (((1, 3, 250, 250), (1, 1, 250, 250), (1, 2, 250, 250)), "multiples of 32"),
    ],
)
def test_bad_input_shapes_are_explained(tiny, shapes, message):
    with pytest.raises(ValueError, match=message):
        tiny(*(torch.zeros(s) for s in shapes))


@pytest.mark.parametrize("grid", [(16, 16), (28, 28), (30, 22)])
def test_window_partition_round_trip(grid):
    x = torch.randn(2, grid[0] * grid[1], 8)
    windows, layout = window_partition(x, grid, 14)
    n_windows = max(1, grid[0] // 14) * max(1, grid[1] // 14)
    assert windows.shape[0] == 2 * n_windows
    assert torch.equal(window_unpartition(windows, layout), x)


def test_window_partition_at_448_gives_2x2_windows_of_14x14():
    windows, _ = window_partition(torch.zeros(1, 28 * 28, 4), (28, 28), 14)
    assert windows.shape == (4, 196, 4)


def test_sine_encoding_range_and_shape():
    pe = sine_position_encoding(8, 6, 32)
    assert pe.shape == (1, 32, 8, 6)
    assert pe.abs().max() <= 1.0
    assert not torch.allclose(pe[..., 0, 0], pe[..., 7, 5])


def test_deformable_attention_samples_the_reference_point():
    # One level, one head, one point at the exact centre of pixel (1, 2): returns that value.
    value = torch.arange(12.0).view(1, 12, 1, 1)  # 3 x 4 map
    loc = torch.tensor([(2 + 0.5) / 4, (1 + 0.5) / 3]).view(1, 1, 1, 1, 1, 2)
    out = ms_deform_attn_core(value, [(3, 4)], loc, torch.ones(1, 1, 1, 1, 1))
    assert out.item() == pytest.approx(6.0)


def test_click_attention_maps_dilate_positive_clicks():
    disks = torch.zeros(1, 1, 256, 256)
    disks[0, 0, 128, 128] = 1
    maps = click_attention_maps(disks, 256, [(8, 8), (32, 32)])
    assert maps[0].shape == (1, 64) and maps[1].shape == (1, 1024)
    assert (maps[0] >= 0.5).sum() >= 1 and (maps[1] >= 0.5).sum() >= 1


def test_vit_b_matches_release_size():
    cfg = get_config("vit_b")
    assert (cfg.input_size, cfg.vit.embed_dim, cfg.vit.depth, cfg.vit.global_blocks) == (
        448,
        768,
        12,
        (5, 11),
    )
    assert get_config("vit_h").vit.global_blocks == (7, 15, 23, 31)
    assert set(CONFIGS) >= {"tiny", "vit_b", "vit_h"}


def test_config_round_trip():
    for cfg in CONFIGS.values():
        from napari_adaptiveclick.models.config import ModelConfig

        assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_model_name():
    with pytest.raises(ValueError, match="Unknown model name 'vit_x'.*tiny"):
        build_model("vit_x")


def test_build_from_config_checks_decoder_width():
    from dataclasses import replace

    from napari_adaptiveclick.models.config import DecoderConfig

    bad = replace(get_config("tiny"), decoder=DecoderConfig(hidden_dim=64))
    with pytest.raises(ValueError, match="hidden_dim"):
        build_from_config(bad)


@pytest.mark.parametrize("batch", [1, 3])
def test_deformable_attention_equals_the_release_formulation(batch):
    # The fast core (contiguous grids, per-level weighted sums) against Deformable DETR's
    # formulation: the same values and the same gradients, with points outside the maps too.
    g = torch.Generator().manual_seed(batch)
    shapes = [(4, 6), (8, 12), (16, 24)]
    tokens = sum(h * w for h, w in shapes)
    value = torch.randn(batch, tokens, 4, 8, generator=g, dtype=torch.float64)
    loc = torch.rand(batch, 50, 4, 3, 4, 2, generator=g, dtype=torch.float64) * 1.4 - 0.2
    weights = torch.rand(batch, 50, 4, 3, 4, generator=g, dtype=torch.float64)
    grads = []
    for core in (ms_deform_attn_core, ms_deform_attn_reference):
        inputs = [t.clone().requires_grad_() for t in (value, loc, weights)]
        out = core(inputs[0], shapes, inputs[1], inputs[2])
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        grads.append((out.detach(), *(t.grad for t in inputs)))
    assert grads[0][0].shape == (batch, 50, 32)
    for fast, reference in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(fast, reference, rtol=1e-12, atol=1e-12)

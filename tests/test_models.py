"""Architectures and atomic save/load with the model card."""
import os

import keras
import numpy as np
import pytest

from utils.model import architectures, store

from conftest import make_card


def test_baseline_is_exactly_the_seed_cnn():
    model = architectures.build_model("baseline", (48, 48, 1), 7)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    summary = [(type(layer).__name__, layer.output.shape[1:]) for layer in layers]
    assert summary == [
        ("Conv2D", (46, 46, 32)), ("MaxPooling2D", (23, 23, 32)),
        ("Conv2D", (21, 21, 64)), ("MaxPooling2D", (10, 10, 64)),
        ("Conv2D", (8, 8, 128)), ("MaxPooling2D", (4, 4, 128)),
        ("Flatten", (2048,)), ("Dense", (128,)), ("Dropout", (128,)),
        ("Dense", (7,)), ("Activation", (7,)),
    ]
    convs = [layer for layer in layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(c.kernel_size == (3, 3) and c.activation.__name__ == "relu" for c in convs)
    assert [c.filters for c in convs] == [32, 64, 128]
    assert all(p.pool_size == (2, 2) for p in layers if isinstance(p, keras.layers.MaxPooling2D))
    assert layers[7].activation.__name__ == "relu" and layers[8].rate == 0.5
    assert layers[9].activation.__name__ == "linear" and layers[10].activation.__name__ == "softmax"
    assert model.count_params() == 355_847   # the seed's Dense(7, softmax) has the same weights


def test_the_baseline_without_dropout_keeps_its_weights_and_fits_its_training_batch_exactly():
    """dropout=0 (the notebooks' overfitting experiment): the same weights, and training mode changes nothing."""
    plain = architectures.build_model("baseline", (48, 48, 1), 7, dropout=0.0)
    assert plain.get_layer("dropout").rate == 0.0 and plain.count_params() == 355_847
    batch = np.random.default_rng(0).random((4, 48, 48, 1), dtype=np.float32)
    np.testing.assert_allclose(plain(batch, training=True), plain(batch, training=False), atol=1e-6)


@pytest.mark.parametrize("arch, channels, default", [("vgg", 1, 0.5), ("vgg_small", 1, 0.5), ("identity", 1, 0.5),
                                                     ("mobilenetv2", 3, 0.3)])
def test_every_architecture_takes_its_dropout_rate(arch, channels, default):
    """train.py --dropout: the rate before the last layer, each architecture's own when not given."""
    assert architectures.build_model(arch, (48, 48, channels), 3).get_layer("dropout").rate == default
    assert architectures.build_model(arch, (48, 48, channels), 3, dropout=0.0).get_layer("dropout").rate == 0.0


def test_stronger_architecture_has_batch_norm_and_more_blocks():
    model = architectures.build_model("vgg", (48, 48, 1), 7)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 8 and kinds.count("BatchNormalization") >= 8
    assert model.get_layer(architectures.LOGITS_LAYER).output.shape[-1] == 7
    assert model.layers[-1].name == architectures.PROBABILITIES_LAYER


def test_transfer_architecture_builds_without_downloading():
    model = architectures.build_model("mobilenetv2", (48, 48, 3), 5, weights=None)
    assert model.output.shape[-1] == 5
    with pytest.raises(ValueError, match="channels 3"):
        architectures.build_model("mobilenetv2", (48, 48, 1), 5)


def test_multiply_adds_counts_every_kernel_at_every_output_position():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)          # 3*3*1*4 weights at 8*8 pixels
    x = keras.layers.MaxPooling2D()(x)                              # free
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)          # 3*3*4 weights at 4*4 pixels
    outputs = keras.layers.Dense(5)(keras.layers.Flatten()(x))      # 64*5 weights once
    tiny = keras.Model(inputs, outputs)
    assert architectures.multiply_adds(tiny) == 36 * 64 + 36 * 16 + 320
    nested = keras.Sequential([keras.Input((8, 8, 1)), tiny])       # a model inside a model counts too
    assert architectures.multiply_adds(nested) == architectures.multiply_adds(tiny)


def test_the_architectures_cost_what_they_promise_per_face():
    baseline, vgg, small = (architectures.multiply_adds(architectures.build_model(arch, (48, 48, 1), 7))
                            for arch in ("baseline", "vgg", "vgg_small"))
    assert 5 * baseline < vgg < 200e6                 # about 14 and 118 million
    assert 0.35 < small / vgg < 0.42                  # vgg_small: 40% of vgg (5/8 of its widths)
    student = architectures.build_model("vgg_small", (48, 48, 1), 7)
    assert student.name == "vgg_small" and student.get_layer("block4_conv2").filters == 160


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown architecture 'nope'"):
        architectures.build_model("nope", (48, 48, 1), 7)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_save_is_atomic_and_load_returns_the_same_model(tmp_path, suffix):
    model = architectures.build_model("baseline", (48, 48, 1), 7)
    path = str(tmp_path / f"m{suffix}")
    store.save_model(model, path, make_card("m"))
    assert sorted(os.listdir(tmp_path)) == sorted(["m.json", f"m{suffix}"])    # no partial files left
    loaded, card = store.load_model(path)
    assert card.classes[0] == "angry"
    batch = np.random.default_rng(0).random((3, 48, 48, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded(batch), model(batch), atol=1e-6)


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = str(tmp_path / "m.h5")
    store.save_model(architectures.build_model("baseline", (48, 48, 1), 7), path, make_card("m"))
    before = open(path, "rb").read()

    class Broken:
        def save(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(OSError):
        store.save_model(Broken(), path, make_card("m"))
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["m.h5", "m.json"]


def test_missing_model_or_card_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model at"):
        store.load_model(str(tmp_path / "none.h5"))
    (tmp_path / "orphan.h5").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="model card .* is missing"):
        store.load_model(str(tmp_path / "orphan.h5"))

"""Face grids: the notebooks' example faces and evaluate.py's most confident mistakes."""
import numpy as np

from utils.media.grids import face_grid, mistakes_grid


def test_face_grid_shows_each_face_under_its_title_and_leaves_the_spare_cells_empty():
    faces = np.random.default_rng(0).random((5, 48, 48, 1))
    figure = face_grid(faces, [f"face {i}" for i in range(5)], columns=3, title="Five faces")
    axes = figure.get_axes()
    assert len(axes) == 6                                          # two rows of three
    shown = [axis for axis in axes if axis.images]
    assert [axis.get_title() for axis in shown] == [f"face {i}" for i in range(5)]
    np.testing.assert_array_equal(shown[2].images[0].get_array(), faces[2, :, :, 0])
    assert figure._suptitle.get_text() == "Five faces"
    assert face_grid(faces[:1], ["one"])._suptitle is None   # no title asked for, none drawn


def test_mistakes_grid_titles_each_face_with_its_true_and_predicted_class():
    faces = np.zeros((2, 48, 48, 1))
    figure = mistakes_grid(faces, ["sad", "fear"], ["neutral", "sad"], [0.91, 0.5])
    assert [axis.get_title() for axis in figure.get_axes()] == ["true sad\npred neutral 0.91", "true fear\npred sad 0.50"]
    assert figure._suptitle.get_text() == "Most confident mistakes"
    assert mistakes_grid(faces[:0], [], [], [])._suptitle.get_text() == "No mistakes"

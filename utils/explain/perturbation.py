"""Hide part of the face, watch the target fall: occlusion, facial regions and deletion.

Each method explains a :class:`utils.explain.targets.Target` (the probability shown beside the
face) computed by a ``source``: the :class:`utils.model.predict.Predictor` the target
describes, or anything else with ``probabilities(batch)`` (the tests' fake models). A
face is one preprocessed float ``(H, W, C)`` array in [0, 1]; every hidden copy goes
through the model in one batch.
"""
import numpy as np

from utils.faces.regions import region_boxes


def hide(face, mask):
    """``face`` with the pixels where ``mask`` (H, W) is true filled with the face's mean colour.

    The mean adds no new edges, so a drop comes from what was removed, not from a black
    patch the network never saw in training.
    """
    hidden = np.array(face, dtype=np.float32, copy=True)
    hidden[mask] = hidden.mean(axis=(0, 1))
    return hidden


def hidden_drops(source, face, masks, target):
    """``(drops, intact)``: the target on the intact face minus with each mask's pixels hidden ``(M,)``,
    and the target on the intact face."""
    values = target.values(source, np.stack([face] + [hide(face, mask) for mask in masks]))
    return values[0] - values[1:], float(values[0])


def top_fraction_mask(saliency, fraction):
    """A boolean mask of the ``fraction`` of pixels with the highest ``saliency``."""
    count = int(round(fraction * saliency.size))
    top = np.argsort(saliency.ravel(), kind="stable")[::-1][:count]
    mask = np.zeros(saliency.size, dtype=bool)
    mask[top] = True
    return mask.reshape(saliency.shape)


def occlusion_sensitivity(source, face, target, patch=None, stride=None):
    """How much the target drops when a square patch hides each place: ``(H, W)``.

    A pixel's value is the mean drop over the patches that covered it (negative: hiding
    it raised the target). Default patch: a sixth of the face (8 px at 48x48), moved by
    half a patch.
    """
    height, width = face.shape[:2]
    patch = patch or max(2, min(height, width) // 6)
    stride = stride or max(1, patch // 2)
    masks = []
    for top in _patch_starts(height, patch, stride):
        for left in _patch_starts(width, patch, stride):
            mask = np.zeros((height, width), dtype=bool)
            mask[top:top + patch, left:left + patch] = True
            masks.append(mask)
    masks = np.stack(masks)
    drops, _ = hidden_drops(source, face, masks, target)
    return np.tensordot(drops, masks, axes=1) / np.maximum(masks.sum(axis=0), 1)


def _patch_starts(size, patch, stride):
    """Patch positions that cover ``size`` entirely, the last one flush with the edge."""
    last = max(0, size - patch)
    return sorted(set(range(0, last + 1, stride)) | {last})


def _boxes_mask(shape, boxes):
    mask = np.zeros(shape[:2], dtype=bool)
    for x, y, w, h in boxes:
        mask[y:y + h, x:x + w] = True
    return mask


def region_sensitivity(source, face, target, keypoints=None):
    """The drop in the target when each facial region is hidden.

    One dict per region of :data:`utils.faces.regions.REGION_LAYOUT` (forehead/brows, eyes, nose,
    mouth, cheeks), placed on ``keypoints`` (in pixels of ``face``; the canonical face's
    when None): ``{"region": "eyes", "boxes": [[x, y, w, h], ...], "probability": p_hidden,
    "drop": p - p_hidden}``. A large drop means the network relies on that region for the
    target; a negative one, that the region argued against it.
    """
    boxes = region_boxes(face.shape, keypoints)
    masks = [_boxes_mask(face.shape, rects) for rects in boxes.values()]
    drops, intact = hidden_drops(source, face, masks, target)
    return [{"region": name, "boxes": rects, "probability": float(intact - drop), "drop": float(drop)}
            for (name, rects), drop in zip(boxes.items(), drops)]

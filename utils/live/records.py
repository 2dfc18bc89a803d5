"""What a video analysis leaves behind: one CSV row per face per frame, the summary, probabilities over time."""


def timeline_fields(classes):
    """CSV columns: one row per face per analysed frame, then a probability column per class."""
    return ["time", "frame", "face_id", "x", "y", "w", "h", "label", "confidence", "uncertain", *classes]


def timeline_rows(seconds, frame, found):
    """The rows :func:`timeline_fields` names for one analysed frame's faces."""
    return [{"time": round(seconds, 3), "frame": frame, "face_id": face["id"],
             **dict(zip("xywh", face["box"])), "label": face["label"], "confidence": face["confidence"],
             "uncertain": face["uncertain"], **face["probabilities"]} for face in found]


def summary_table(rows, classes):
    """Per emotion: rows labelled with it, their share, mean confidence, and how many were uncertain."""
    import pandas as pd
    frame = pd.DataFrame(rows, columns=timeline_fields(classes))
    grouped = frame.groupby("label")
    table = pd.DataFrame({
        "faces": grouped.size(),
        "share_%": grouped.size() / max(1, len(frame)) * 100,
        "mean_confidence": grouped["confidence"].mean(),
        "uncertain": grouped["uncertain"].sum(),
    }).reindex(classes).fillna(0)
    table.index.name = "emotion"
    return table.astype({"faces": int, "uncertain": int}).round(2)


def probabilities_over_time(rows, classes):
    """``(times, probabilities)``: each analysed frame's probabilities, averaged over its faces."""
    import pandas as pd
    frame = pd.DataFrame(rows, columns=timeline_fields(classes))
    mean = frame.groupby("time")[list(classes)].mean()
    return mean.index.to_numpy(dtype=float), mean.to_numpy(dtype=float)

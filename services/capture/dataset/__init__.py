"""Captured frames as a dataset ready to label, in three layouts at once (one root):

    data.yaml                      Ultralytics: path, train/val = images, names {id: name}
    label_config.xml               Label Studio labelling config the tasks are written for
    images/<camera>/<day>/<HHMMSSmmm>-<frame>-<reason>.jpg
    labels/<camera>/<day>/<same>.txt              YOLO: class cx cy w h, normalised
    records/<day>/<camera>/<same>.json            the per-image record: source of truth
    coco/<day>.json                COCO detection JSON of the day (file_name: images/...)
    labelstudio/<day>.json         Label Studio tasks of the day, boxes as predictions

<camera> is a slug of the camera id plus a hash of it; <day> the UTC date of capture.
`steadyeye dataset export` merges any days (filtered) into one layout and one file."""

from services.capture.dataset.dataset import Dataset
from services.capture.dataset.record import DatasetError, ImageRecord, UnknownClass

__all__ = ["Dataset", "DatasetError", "ImageRecord", "UnknownClass"]

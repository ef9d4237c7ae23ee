"""The peer: the same model and sequences through PyTorch + transformers on the CPU.

Residues enter as the English tokens of their lower-case letters ([CLS] residues [SEP]), exactly
the one-hot Θ that r2dl starts from; vectors are the mask-aware mean of the last hidden state.
Batches are length-sorted, `--batch` sequences each, padded to their longest. Prints one JSON line.

    python3 benches/embed_pytorch.py MODEL_DIR benches/data/embed_2000.fasta [--batch 64] [--threads 2]
"""
import argparse
import json
import time

import torch
from transformers import AutoModel, AutoTokenizer


def read_fasta(path):
    seqs, cur = [], None
    for line in open(path):
        line = line.strip()
        if line.startswith(">"):
            if cur is not None:
                seqs.append("".join(cur))
            cur = []
        elif line:
            cur.append(line)
    if cur is not None:
        seqs.append("".join(cur))
    return seqs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("fasta")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model, attn_implementation=args.attn).eval()
    vocab = tok.get_vocab()
    letter = {c: vocab[c.lower()] for c in "ACDEFGHIKLMNPQRSTVWYXBZJUO"}
    cls, sep, pad = vocab["[CLS]"], vocab["[SEP]"], vocab["[PAD]"]
    seqs = read_fasta(args.fasta)
    ids = [[cls] + [letter[c] for c in s.upper()] + [sep] for s in seqs]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    batches = [order[i : i + args.batch] for i in range(0, len(order), args.batch)]
    tensors = []
    for b in batches:
        width = max(len(ids[i]) for i in b)
        x = torch.full((len(b), width), pad, dtype=torch.long)
        m = torch.zeros((len(b), width), dtype=torch.long)
        for r, i in enumerate(b):
            x[r, : len(ids[i])] = torch.tensor(ids[i])
            m[r, : len(ids[i])] = 1
        tensors.append((x, m))
    tokens = sum(len(t) for t in ids)
    times = []
    with torch.inference_mode():
        model(input_ids=tensors[-1][0], attention_mask=tensors[-1][1])  # warm-up
        for _ in range(args.repeats):
            start = time.perf_counter()
            for x, m in tensors:
                h = model(input_ids=x, attention_mask=m).last_hidden_state
                mf = m.unsqueeze(-1).to(h.dtype)
                _ = (h * mf).sum(1) / mf.sum(1)
            times.append(time.perf_counter() - start)
    best = min(times)
    print(json.dumps({
        "peer": f"torch {torch.__version__} ({args.attn}, batch {args.batch}, {args.threads} threads)",
        "sequences": len(seqs), "tokens": tokens, "seconds": [round(t, 3) for t in times],
        "seq_per_s": round(len(seqs) / best, 1), "tokens_per_s": round(tokens / best),
    }))


if __name__ == "__main__":
    main()

-- r2dl demo: SQL over the real protein sequences in sample_data/ (see sample_data/README.md).

-- What the sample holds, per label (from the FASTA description), read from the gzip file
SELECT coalesce(regexp_match(description, 'label=(\S+)')[1], 'proteome') AS label,
       count(*) AS records,
       min(length(sequence)) AS shortest,
       max(length(sequence)) AS longest,
       round(avg(length(sequence)), 1) AS mean_length
FROM 'sample_data/sample.fasta.gz'
GROUP BY 1
ORDER BY records DESC, label;

-- The five longest proteins
SELECT id, length(sequence) AS length, substr(sequence, 1, 24) AS starts_with
FROM 'sample_data/sample.fasta'
ORDER BY length DESC
LIMIT 5;

-- Records with non-standard residues: selenocysteine (U) and unknown (X), from the Parquet copy
SELECT id,
       length(sequence) - length(replace(sequence, 'U', '')) AS selenocysteines,
       length(sequence) - length(replace(sequence, 'X', '')) AS unknown
FROM 'sample_data/sample.parquet'
WHERE sequence LIKE '%U%' OR sequence LIKE '%X%'
ORDER BY id;

-- The reprogrammed model: the 5 sample sequences nearest to the frog peptide aurein 1.2 in the
-- embedding space of all-MiniLM-L6-v2 read through the one-hot Θ (fetched on first use)
SELECT id,
       length(sequence) AS length,
       round(array_distance(embed(sequence), embed('GLFDIIKKIAESF')), 3) AS distance,
       substr(sequence, 1, 24) AS starts_with
FROM 'sample_data/sample.fasta'
ORDER BY distance
LIMIT 5;

-- Trained predictors (udfs/, each a SQL function): the short sample sequences most likely to be
-- antimicrobial, with their predicted toxicity
SELECT id,
       length(sequence) AS length,
       round(predict_amp(sequence), 3) AS amp,
       round(predict_toxicity(sequence), 3) AS toxicity
FROM 'sample_data/sample.fasta'
WHERE length(sequence) < 60
ORDER BY amp DESC
LIMIT 5;

"""Scoring on sets of embeddings, numpy only: the cosine (``cosine``), the cross-modal Gaussian backend
(``backend``) and linear probes of what an embedding holds (``probes``). Nothing here knows which model or
checkpoint made the embeddings; ``voxface.evaluation`` embeds and hands the arrays over."""

"""HR@k and NDCG@k on the fixed sampled candidates and under full ranking (P§3)."""

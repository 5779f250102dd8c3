"""lskd: a reproducible benchmark suite for logit-based knowledge distillation.

Built around *Logit Standardization in Knowledge Distillation* (Sun, Ren, Li, Wang, Cao; CVPR 2024).
"""

__version__ = "0.1.0"

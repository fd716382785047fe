"""Training: the pretrainer of face and voice encoders (``pretrain``) and the voice-face alignment."""

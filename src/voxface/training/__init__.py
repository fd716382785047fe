"""Training: the face teacher (``face_teacher``) and, later, the voice-face alignment."""

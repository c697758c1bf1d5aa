"""Motion generation: audio (+ phones, emotions, gaze) -> one MotionFrame per tick, by rules or by the learned mouth."""

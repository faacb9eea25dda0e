"""Measured boot: what the firmware and the boot chain extend into the TPM (and TDX RTMRs)."""

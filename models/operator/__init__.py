"""What every family that learns the operator of stimulus protocols shares (``operator``
datasets): its objective and errors (:mod:`.objective`), its use in ``ionops predict``
(:mod:`.serving`) and its report figures (:mod:`.report`)."""

"""extract and scale lock their output folders alike, so the refusal cannot tell which of the two holds one: it
said "another medimg scale" to a scale refused by a running extract (s43_diffread5). It names neither wrongly now."""

from __future__ import annotations

import pytest

from medimg.output import FolderLock


def test_a_folder_held_by_extract_refuses_scale_without_naming_scale_as_the_holder(tmp_path):
    held = FolderLock(tmp_path, "extract")
    try:
        with pytest.raises(ValueError) as refused:
            FolderLock(tmp_path, "scale")
        said = str(refused.value)
        assert "another medimg run (an extract or a scale still going" in said and "give this scale another" in said
        assert "another medimg scale" not in said
    finally:
        held.release()
    FolderLock(tmp_path, "scale").release()  # free once the other run ends

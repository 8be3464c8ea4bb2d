"""Dev translation during training stops degenerate loops the way evaluation does."""

import torch

from lowres_mt.train.devset import LoopStop


def test_loop_stop_ends_only_the_looping_row_and_ignores_the_prompt():
    prompt = [7, 8, 9, 10] * 3  # a repetitive prompt must not count
    looping = prompt + [1, 2, 3, 4] * 3
    fine = prompt + [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 9]
    stop = LoopStop(prompt_width=len(prompt), repeats=3)
    assert stop(torch.tensor([looping, fine])).tolist() == [True, False]
    assert LoopStop(len(prompt), repeats=0)(torch.tensor([looping])).tolist() == [False]

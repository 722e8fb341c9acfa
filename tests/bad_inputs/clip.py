"""The fixed names of a bad-input work folder: the clip every prompt starts from, the depth model a prompt
picks, the file a pickled payload would create."""

T, H, W = 5, 32, 32  # the clip every prompt starts from: 5 frames of 32 x 32
CLIP = "clip.mp4"
ANYTHING = "Depth Anything V2: tiny-v2"
MARKER = "code_ran.txt"  # what the pickled files create when unpickled, in the work folder

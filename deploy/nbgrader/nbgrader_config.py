# nbgrader for the course: one exchange for the class, the lessons' "Your turn" cells as the
# graded parts. The hub puts this folder on every learner's JUPYTER_CONFIG_PATH
# (deploy/jupyterhub/jupyterhub_config.py), so `nbgrader fetch_assignment` / `submit` (or the
# Assignments tab) find the course; the instructor runs generate, release, collect and
# autograde in the course folder. tests/test_hub.py runs that whole round for lesson 06.
#
#   CNNVIZ_NBGRADER_EXCHANGE   the shared exchange folder [/srv/nbgrader/exchange]
#   CNNVIZ_NBGRADER_INSTRUCTORS  hub users who grade, comma-separated [instructor]
import os

c = get_config()  # noqa: F821  (nbgrader's config loader defines it)

c.CourseDirectory.course_id = "cnnviz"
c.Exchange.root = os.environ.get("CNNVIZ_NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")
# Learners on a hub whose servers all run as one system user (the local spawner, or
# Kubernetes' jovyan): a submission is named after the hub user, not the system user.
_user = os.environ.get("JUPYTERHUB_USER")
if _user and _user not in os.environ.get("CNNVIZ_NBGRADER_INSTRUCTORS", "instructor").split(","):
    c.CourseDirectory.student_id = _user
# The lessons' stub, exactly as stored (cnnviz_widgets.exercises.notebooks.STUB).
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# A graded lesson runs whole, in quick mode when the grader sets CNNVIZ_QUICK=1; checks raise
# in grading mode (CNNVIZ_GRADING=1), so a wrong answer scores 0.
c.ExecutePreprocessor.timeout = 900

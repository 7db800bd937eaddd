# Appended by repo2docker to the image it builds from binder/ (deploy/z2jh/build-image.sh).
# jupyterhub-singleuser must match the hub's major version (chart 4.x runs JupyterHub 5).
RUN python -m pip install --no-cache-dir "jupyterhub>=5,<6" "nbgrader>=0.9" \
 && python -c "import cnnviz_widgets, nbgrader, jupyterhub"

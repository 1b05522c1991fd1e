// The engine client shared by the end-to-end tests (the default socket, or DOCKER_HOST).
import Docker from 'dockerode';

export const docker = new Docker();

/** The plugin under test, as `make install` installed it. */
export const PLUGIN = process.env.LOGSHIP_PLUGIN ?? 'logship:latest';

/** Where the host keeps the plugin's store (the source of its `data` mount). */
export const DATA_DIR = process.env.LOGSHIP_DATA_DIR ?? '/var/lib/logship';

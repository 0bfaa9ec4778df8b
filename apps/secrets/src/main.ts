import { runServiceMain } from '@soma/service-runtime';
import { secretsService } from './secrets.service-definition.js';

runServiceMain(secretsService);

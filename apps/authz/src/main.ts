import { runServiceMain } from '@soma/service-runtime';
import { authzService } from './authz.service-definition.js';

runServiceMain(authzService);

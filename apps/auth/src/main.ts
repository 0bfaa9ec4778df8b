import { runServiceMain } from '@soma/service-runtime';
import { authService } from './auth.service-definition.js';

runServiceMain(authService);
